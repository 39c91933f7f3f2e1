"""The website cannot hold an import: a deadline per request, a capped Retry-After, capped answers.

Real sockets on 127.0.0.1: the fake concrexit sends an answer a byte at a
time (a slow-loris), throttles with a long `Retry-After` as DRF does, or
streams hundreds of megabytes. Before thalia/transport.py, each of these
kept the importer waiting (minutes to hours) or growing; each test fails
then through its outer time-out (`outer_timeout`, generous: no test here
asserts a duration) or its byte count.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from faces.models import Album, ImportRun, Photo
from faces.sources import SourceAlbum, SourceError
from tests.conftest import outer_timeout
from tests.fake_concrexit import FakeConcrexit
from tests.test_import_concrexit import ALBUMS, FIRST_PAGE, file_path, tiny
from thalia.client import ConcrexitSource

OUTER_S = 60  # far beyond any deadline below; the old code needed minutes to hours
MIB = 1024 * 1024


def source(fake: FakeConcrexit, **options: object) -> ConcrexitSource:
    settings: dict[str, object] = {"timeout_s": 1.0, "retries": 0, "retry_after_max_s": 1.0}
    return ConcrexitSource(fake.base_url, fake.token, **(settings | options))  # type: ignore[arg-type]


@pytest.fixture
def site() -> FakeConcrexit:  # type: ignore[misc]
    with FakeConcrexit() as fake:
        fake.add_album("expo", "Expo", [tiny("red")])
        fake.add_album("fair", "Fair", [tiny("green")])
        yield fake


# --- a deadline for the whole answer ----------------------------------------------------------------
def test_a_server_that_dribbles_a_byte_every_two_seconds_hits_the_deadline(site: FakeConcrexit) -> None:
    """The issue's case: each byte comes within the old per-read time-out (3 s here), so
    before, the album list took one 2 s wait per byte (some 400 bytes: 13 minutes)."""
    site.slow_loris(FIRST_PAGE, interval_s=2.0)

    with outer_timeout(OUTER_S), pytest.raises(SourceError) as caught:
        list(source(site, timeout_s=3.0).albums())

    assert str(caught.value) == f"{site.base_url}{FIRST_PAGE}: timed out after 3 s"


def test_headers_sent_a_byte_at_a_time_hit_the_deadline_too(site: FakeConcrexit) -> None:
    site.slow_loris(FIRST_PAGE, interval_s=0.3, headers_too=True)

    with outer_timeout(OUTER_S), pytest.raises(SourceError) as caught:
        list(source(site).albums())

    assert str(caught.value) == f"{site.base_url}{FIRST_PAGE}: timed out after 1 s"


def test_each_retry_gets_its_own_deadline_and_a_good_answer_is_taken(site: FakeConcrexit) -> None:
    """Retried when the headers never came (urllib3 retries up to the answer, not a body cut short)."""
    site.slow_loris(FIRST_PAGE, interval_s=0.3, times=2, headers_too=True)

    with outer_timeout(OUTER_S):
        albums = [album.source_id for album in source(site, retries=2).albums()]

    assert albums == ["expo", "fair"]
    assert [path for _, path in site.requests] == [FIRST_PAGE] * 3


def test_an_answer_within_the_deadline_is_read_whole(site: FakeConcrexit) -> None:
    site.slow_loris(f"{ALBUMS}expo/", interval_s=0.001)  # slow, but well within 10 s

    with outer_timeout(OUTER_S):
        listing = source(site, timeout_s=10.0).photos(SourceAlbum("expo", "Expo"))

    assert [photo.source_id for photo in listing.photos] == ["1"]


# --- Retry-After --------------------------------------------------------------------------------------
def test_a_retry_after_of_an_hour_waits_only_the_capped_time(site: FakeConcrexit) -> None:
    """Before: urllib3 obeyed up to 6 hours per retry (THALIA_RETRY_AFTER_MAX_SECONDS now caps it)."""
    site.throttle(FIRST_PAGE, wait_s=3600)

    with outer_timeout(OUTER_S):
        albums = [album.source_id for album in source(site, retries=1, retry_after_max_s=1.0).albums()]

    assert albums == ["expo", "fair"]
    assert [path for _, path in site.requests] == [FIRST_PAGE] * 2


def test_a_throttled_request_without_retries_left_stops_with_the_status(site: FakeConcrexit) -> None:
    site.throttle(FIRST_PAGE, wait_s=3600)

    with outer_timeout(OUTER_S), pytest.raises(SourceError) as caught:
        list(source(site).albums())

    assert str(caught.value) == f"{site.base_url}{FIRST_PAGE}: HTTP 429"


# --- answers read with a size cap ---------------------------------------------------------------------
def test_a_400_mb_album_list_is_dropped_as_it_streams_in(site: FakeConcrexit) -> None:
    """No Content-Length, 400 MB of valid JSON: reading stops at the cap, so the
    importer never holds it (before: 891 MB RSS, and a list of 6 million albums)."""
    site.endless_answer(FIRST_PAGE, total_bytes=400 * MIB)

    with outer_timeout(OUTER_S), pytest.raises(SourceError) as caught:
        list(source(site, timeout_s=30.0, max_answer_bytes=1 * MIB).albums())

    assert str(caught.value) == f"{site.base_url}{FIRST_PAGE}: the answer is over the 1,048,576 byte limit"
    # What the server could write before the client stopped reading: the cap
    # plus the sockets' buffers, nowhere near the 400 MB it meant to send.
    assert site.sent_bytes < 32 * MIB


def test_an_answer_that_declares_a_length_over_the_cap_is_not_read(site: FakeConcrexit) -> None:
    body = b'{"slug": "x", "photos": [' + b" " * (2 * MIB) + b"]}"
    site.fail(f"{ALBUMS}expo/", 200, body=body)

    with pytest.raises(SourceError) as caught:
        source(site, max_answer_bytes=MIB).photos(SourceAlbum("expo", "Expo"))

    assert str(caught.value) == (
        f"{site.base_url}{ALBUMS}expo/: the answer is 2,097,179 bytes, over the 1,048,576 byte limit"
    )


def test_an_event_answer_over_the_cap_gives_no_date(site: FakeConcrexit) -> None:
    site.endless_answer("/api/v2/events/7/", total_bytes=400 * MIB)

    with outer_timeout(OUTER_S):
        assert source(site, timeout_s=30.0, max_answer_bytes=MIB).event_date(7) is None

    assert site.sent_bytes < 32 * MIB


# --- the same through the command: the run ends with the error and records it ---------------------
@pytest.mark.django_db
def test_a_dribbling_album_list_stops_the_run_which_records_why(
    fake_concrexit: FakeConcrexit, media_root: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_TIMEOUT_SECONDS = 1
    fake_concrexit.add_album("expo", "Expo", [tiny("red")])
    fake_concrexit.slow_loris(FIRST_PAGE, interval_s=0.3)
    expected = f"{fake_concrexit.base_url}{FIRST_PAGE}: timed out after 1 s"

    with outer_timeout(OUTER_S), pytest.raises(CommandError) as caught:
        call_command("import_albums", workers=1, no_progress=True, stdout=io.StringIO())

    assert str(caught.value) == f"Import failed: {expected}"
    run = ImportRun.objects.get()
    assert (run.error, run.finished is not None) == (expected, True)
    assert not Album.objects.exists()


@pytest.mark.django_db
def test_an_album_answer_over_the_cap_fails_that_album_only(
    fake_concrexit: FakeConcrexit, media_root: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_MAX_ANSWER_BYTES = MIB
    fake_concrexit.add_album("expo", "Expo", [tiny("red")])
    fake_concrexit.add_album("fair", "Fair", [tiny("green")])
    fake_concrexit.endless_answer(f"{ALBUMS}expo/", total_bytes=400 * MIB)
    out, err = io.StringIO(), io.StringIO()

    with outer_timeout(OUTER_S):
        call_command("import_albums", workers=1, no_progress=True, stdout=out, stderr=err)

    message = (
        f"album expo: {fake_concrexit.base_url}{ALBUMS}expo/: the answer is over the 1,048,576 byte limit"
    )
    assert err.getvalue() == f"  {message}\n"
    assert out.getvalue().startswith("Imported 1 albums: 1 new, ")
    assert ImportRun.objects.get().errors == message
    assert list(Album.objects.values_list("source_id", flat=True)) == ["fair"]


@pytest.mark.django_db
def test_a_photo_file_sent_a_byte_at_a_time_fails_that_photo_at_the_deadline(
    fake_concrexit: FakeConcrexit, media_root: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    """The download runs in an encoding worker process; its deadline is the same."""
    settings.THALIA_TIMEOUT_SECONDS = 1
    settings.THALIA_ENCODE_VARIANT = "small"
    red, green = fake_concrexit.add_album("expo", "Expo", [tiny("red"), tiny("green")])
    fake_concrexit.slow_loris(file_path("expo", red, "small"), interval_s=0.3)
    out, err = io.StringIO(), io.StringIO()

    with outer_timeout(OUTER_S):
        call_command("import_albums", workers=1, no_progress=True, stdout=out, stderr=err)

    assert err.getvalue() == f"  photo {red}: download failed: timed out after 1 s\n"
    assert "2 new, 0 changed or retried, 0 unchanged, 0 removed photos; 1 encoded, 1 failed" in out.getvalue()
    assert sorted(Photo.objects.values_list("source_id", "status")) == [
        (str(red), "failed"),
        (str(green), "done"),
    ]
