"""import_albums against the concrexit photos API (the fake in tests/fake_concrexit.py).

Everything goes over real HTTP to 127.0.0.1 and encodes real photos: albums,
photos, faces and event dates stored; pagination; inaccessible and hidden
albums; a refused token; idempotence, replaced and removed photos; failing
downloads and album details; matching in both directions; and the cache of
signed file URLs behind GET /api/photos/.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db.models import F
from PIL import Image

from faces.imports.importer import run_import
from faces.imports.summary import ImportSummary
from faces.models import Album, FaceEncoding, ImportRun, Match, Photo
from faces.sources import SourceError
from members.services import reference_add
from tests.factories import MemberFactory
from tests.fake_concrexit import FakeConcrexit
from thalia.client import ConcrexitSource
from thalia.services import website_source

pytestmark = pytest.mark.django_db

ALBUMS = "/api/v2/photos/albums/"
FIRST_PAGE = f"{ALBUMS}?limit=50&offset=0"
VARIANTS = {"full", "small", "medium", "large"}
SUMMARY_LINE = re.compile(
    r"Imported (\d+) albums: (\d+) new, (\d+) changed or retried, (\d+) unchanged, (\d+) removed photos; "
    r"(\d+) encoded, (\d+) failed; (\d+) faces, (\d+) matches in \d+\.\d s\n"
)


# --- helpers -------------------------------------------------------------------
def tiny(color: str) -> bytes:
    """A small PNG without a face: cheap to serve and to encode."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buffer, "PNG")
    return buffer.getvalue()


def import_command(**options: object) -> tuple[list[int], str]:
    """Run the real command; the summary line's numbers and what went to stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("import_albums", workers=1, no_progress=True, stdout=out, stderr=err, **options)
    match = SUMMARY_LINE.fullmatch(out.getvalue())
    assert match is not None, out.getvalue()
    return [int(number) for number in match.groups()], err.getvalue()


def import_run(**options: object) -> ImportSummary:
    """run_import with the website source; `seconds` zeroed so summaries compare exactly."""
    summary = run_import(website_source(), workers=1, **options)  # type: ignore[arg-type]
    return dataclasses.replace(summary, seconds=0.0)


def file_path(slug: str, pk: int, variant: str = "large", version: int = 0) -> str:
    stem = f"/media/private/photos/{slug}/{pk}_{version}"
    return f"{stem}.jpg" if variant == "full" else f"{stem}_{variant}.webp"


def media_requests(fake: FakeConcrexit, start: int = 0) -> list[str]:
    """Paths (without signature) of the photo files downloaded since request number `start`."""
    return [urlsplit(path).path for _, path in fake.requests[start:] if path.startswith("/media/")]


def api_requests(fake: FakeConcrexit, start: int = 0) -> list[str]:
    return [path for _, path in fake.requests[start:] if path.startswith("/api/")]


def served_hash(fake: FakeConcrexit, pk: int) -> str:
    """sha256 of the encode variant (large) as the site serves it now."""
    response = requests.get(fake.file_url(pk, "large"), timeout=10)
    assert response.status_code == 200
    return hashlib.sha256(response.content).hexdigest()


def photo(pk: int) -> Photo:
    return Photo.objects.get(album__source=Album.Source.CONCREXIT, source_id=str(pk))


def face_ids(pk: int) -> list[int]:
    return sorted(FaceEncoding.objects.filter(photo__source_id=str(pk)).values_list("id", flat=True))


def matched(member: object) -> list[tuple[str, int]]:
    """(photo source id, face id) of every match of a member."""
    return sorted(
        Match.objects.filter(member=member).values_list("face__photo__source_id", "face_id")  # type: ignore[misc]
    )


def snapshot() -> dict[str, list[tuple[object, ...]]]:
    """Every row an import writes except the signed-URL cache (refreshed on each sync)."""
    return {
        "albums": list(
            Album.objects.values_list(
                "id", "source", "source_id", "title", "date", "hidden", "missing", "created"
            )
        ),
        "photos": list(
            Photo.objects.order_by("id").values_list(
                "id",
                "album_id",
                "source_id",
                "origin",
                "status",
                "error",
                "content_hash",
                "width",
                "height",
                "encoded_at",
                "created",
            )
        ),
        "faces": list(
            FaceEncoding.objects.order_by("id").values_list(
                "id", "photo_id", "top", "right", "bottom", "left"
            )
        ),
        "matches": list(
            Match.objects.order_by("id").values_list("id", "member_id", "reference_id", "face_id", "distance")
        ),
    }


def member_with_reference(examples: Path, name: str = "obama.jpg", username: str = "barack"):  # type: ignore[no-untyped-def]
    member = MemberFactory(username=username)
    reference_add(member=member, data=(examples / name).read_bytes())
    return member


@pytest.fixture
def fake(fake_concrexit: FakeConcrexit, media_root: Path) -> FakeConcrexit:
    return fake_concrexit


# --- what is stored ------------------------------------------------------------
def test_albums_photos_faces_and_event_dates_are_stored(fake: FakeConcrexit, examples: Path) -> None:
    # 00:30 on 5 March in Amsterdam is still 4 March in UTC: the site's local date counts.
    fake.add_event(7, "Spring borrel", dt.datetime(2023, 3, 5, 0, 30))
    borrel = fake.add_album(
        "spring-borrel",
        "Spring borrel",
        [examples / "obama.jpg", examples / "two_people.jpg", tiny("red")],
        event=7,
    )
    lustrum = fake.add_album("lustrum", "Lustrum", [tiny("green")], event=99)  # the event is gone
    beach = fake.add_album("beach-day", "Beach day", [examples / "kit_with_rose.jpg"])  # no event

    numbers, errors = import_command()
    downloaded = media_requests(fake)

    assert numbers == [3, 5, 0, 0, 0, 5, 0, 5, 0]
    assert errors == ""
    assert list(Album.objects.values_list("source", "source_id", "title", "date", "hidden", "missing")) == [
        ("concrexit", "spring-borrel", "Spring borrel", dt.date(2023, 3, 5), False, False),
        ("concrexit", "beach-day", "Beach day", None, False, False),  # imported after lustrum
        ("concrexit", "lustrum", "Lustrum", None, False, False),
    ]
    expected = [
        ("spring-borrel", borrel[0], 1537, 1920, 1),
        ("spring-borrel", borrel[1], 1920, 1127, 2),
        ("spring-borrel", borrel[2], 1920, 1440, 0),
        ("lustrum", lustrum[0], 1920, 1440, 0),
        ("beach-day", beach[0], 1374, 1920, 2),
    ]
    photos = list(Photo.objects.select_related("album").order_by("id"))
    assert [
        (p.album.source_id, p.source_id, p.origin, p.status, p.error, p.content_hash, p.width, p.height)
        for p in photos
    ] == [
        (slug, str(pk), file_path(slug, pk, "full"), "done", "", served_hash(fake, pk), width, height)
        for slug, pk, width, height, _ in expected
    ]
    assert [p.faces.count() for p in photos] == [faces for *_, faces in expected]
    for p in photos:
        assert set(p.remote_urls) == VARIANTS
        assert urlsplit(p.remote_urls["large"]).path == file_path(p.album.source_id, int(p.source_id))
        assert p.file.name == ""  # website photos are never copied
        for face in p.faces.all():
            assert 0 <= face.left < face.right <= p.width
            assert 0 <= face.top < face.bottom <= p.height
    assert Match.objects.count() == 0
    # Each event is asked once; each photo's large variant is downloaded once.
    assert sorted(path for path in api_requests(fake) if path.startswith("/api/v2/events/")) == [
        "/api/v2/events/7/",
        "/api/v2/events/99/",
    ]
    assert sorted(downloaded) == sorted(file_path(slug, pk) for slug, pk, *_ in expected)


def test_albums_without_date_are_ordered_by_import_time(fake: FakeConcrexit) -> None:
    fake.add_event(3, "Gala", dt.datetime(2022, 11, 18, 20, 0))
    fake.add_event(4, "Symposium", dt.datetime(2024, 2, 1, 9, 0))
    fake.add_album("first-undated", "First undated", [tiny("red")])
    fake.add_album("gala", "Gala", [tiny("green")], event=3)
    assert import_run().albums == 2

    fake.add_album("second-undated", "Second undated", [tiny("blue")])
    fake.add_album("symposium", "Symposium", [tiny("white")], event=4)
    start = len(fake.requests)
    assert import_run().albums == 4

    assert list(Album.objects.values_list("source_id", "date")) == [
        ("symposium", dt.date(2024, 2, 1)),
        ("gala", dt.date(2022, 11, 18)),
        ("second-undated", None),
        ("first-undated", None),
    ]
    # The gala's date is known: only the new album's event is asked.
    assert [p for p in api_requests(fake, start) if p.startswith("/api/v2/events/")] == ["/api/v2/events/4/"]


def test_a_token_without_events_read_imports_albums_without_dates_and_says_so_once(
    fake: FakeConcrexit, caplog: pytest.LogCaptureFixture
) -> None:
    fake.token_scopes[fake.token] = frozenset({"photos:read"})  # the site answers events with 403
    fake.add_event(3, "Gala", dt.datetime(2022, 11, 18, 20, 0))
    fake.add_event(4, "Symposium", dt.datetime(2024, 2, 1, 9, 0))
    fake.add_album("gala", "Gala", [tiny("green")], event=3)
    fake.add_album("symposium", "Symposium", [tiny("white")], event=4)

    numbers, err = import_command()

    notice = (
        "albums get no date: the website refused its events API (HTTP 403), so Throwback's token lacks the "
        "events:read scope. Run `manage.py connect_thalia` again with events:read in THALIA_CONNECT_SCOPES "
        "(the default), or give THALIA_ACCESS_TOKEN that scope"
    )
    assert numbers[:2] == [2, 2]
    assert list(Album.objects.values_list("source_id", "date")) == [("symposium", None), ("gala", None)]
    assert err == f"  {notice}\n"
    assert ImportRun.objects.get().errors == notice
    assert [record.getMessage() for record in caplog.records if record.levelname == "WARNING"] == [notice]
    # Asked once: the second album's event is not asked after the refusal.
    assert [p for p in api_requests(fake) if p.startswith("/api/v2/events/")] == ["/api/v2/events/3/"]

    # With the scope the next run fills in the dates.
    del fake.token_scopes[fake.token]
    import_command()
    assert list(Album.objects.values_list("source_id", "date")) == [
        ("symposium", dt.date(2024, 2, 1)),
        ("gala", dt.date(2022, 11, 18)),
    ]
    assert ImportRun.objects.order_by("-id").first().errors == ""  # type: ignore[union-attr]


def test_dates_already_known_still_count_after_the_site_refuses_events(fake: FakeConcrexit) -> None:
    fake.add_event(3, "Gala", dt.datetime(2022, 11, 18, 20, 0))
    fake.add_album("lost-event", "Lost event", [tiny("red")], event=99)  # asked every run: the event is gone
    fake.add_album("gala", "Gala", [tiny("green")], event=3)
    import_run()
    fake.token_scopes[fake.token] = frozenset({"photos:read"})

    summary = import_run(since=dt.date(2023, 1, 1))

    # The gala's stored date (2022) still puts it before --since, after the refusal.
    assert summary.albums == 1
    assert Album.objects.get(source_id="gala").date == dt.date(2022, 11, 18)
    assert len(summary.errors) == 1 and summary.errors[0].startswith("albums get no date: ")


def test_more_than_one_page_of_albums_is_imported(fake: FakeConcrexit, settings) -> None:  # type: ignore[no-untyped-def]
    # The large variant would blow each 32×24 filler up to 1920×1440; the original is cheaper.
    settings.THALIA_ENCODE_VARIANT = "full"
    colors = ["red", "green", "blue", "yellow", "white"]
    pks = {
        f"album-{i:02d}": fake.add_album(f"album-{i:02d}", f"Album {i}", [tiny(colors[i % 5])])[0]
        for i in range(55)
    }

    numbers, errors = import_command()

    assert numbers == [55, 55, 0, 0, 0, 55, 0, 0, 0]
    assert errors == ""
    assert sorted(Album.objects.values_list("source_id", "title")) == [
        (f"album-{i:02d}", f"Album {i}") for i in range(55)
    ]
    assert sorted(Photo.objects.values_list("album__source_id", "source_id", "status")) == sorted(
        (slug, str(pk), "done") for slug, pk in pks.items()
    )
    assert sorted(media_requests(fake)) == sorted(file_path(slug, pk, "full") for slug, pk in pks.items())
    assert [p for p in api_requests(fake) if not p.startswith(f"{ALBUMS}album-")] == [
        FIRST_PAGE,
        f"{ALBUMS}?limit=50&offset=50",
    ]


def test_a_failing_album_page_stops_the_run_and_marks_nothing_missing(fake: FakeConcrexit) -> None:
    for i in range(52):
        fake.add_album(f"album-{i:02d}", f"Album {i}", [])
    assert import_run().albums == 52
    fake.fail(f"{ALBUMS}?limit=50&offset=50", 503)

    with pytest.raises(CommandError) as raised:
        import_command()

    assert str(raised.value) == f"Import failed: {fake.base_url}{ALBUMS}?limit=50&offset=50: HTTP 503"
    assert set(Album.objects.values_list("hidden", "missing")) == {(False, False)}
    assert Album.objects.count() == 52


# --- which albums ----------------------------------------------------------------
def test_inaccessible_and_hidden_albums_are_not_imported(fake: FakeConcrexit) -> None:
    (open_pk,) = fake.add_album("open", "Open", [tiny("red")])
    fake.add_album("board-only", "Board only", [tiny("green")], accessible=False)
    fake.add_album("secret", "Secret", [tiny("blue")], hidden=True)

    numbers, errors = import_command()

    assert numbers == [1, 1, 0, 0, 0, 1, 0, 0, 0]
    assert errors == ""
    assert list(Album.objects.values_list("source_id", flat=True)) == ["open"]
    assert list(Photo.objects.values_list("source_id", "status")) == [(str(open_pk), "done")]
    # Neither is even asked for: the listing says enough.
    assert api_requests(fake) == [FIRST_PAGE, f"{ALBUMS}open/"]
    assert media_requests(fake) == [file_path("open", open_pk)]


def test_album_option_imports_only_that_album(fake: FakeConcrexit) -> None:
    fake.add_album("first", "First", [tiny("red")])
    (second_pk,) = fake.add_album("second", "Second", [tiny("green")])

    numbers, _ = import_command(album="second")

    assert numbers == [1, 1, 0, 0, 0, 1, 0, 0, 0]
    assert list(Album.objects.values_list("source_id", "missing")) == [("second", False)]
    assert list(Photo.objects.values_list("source_id", "status")) == [(str(second_pk), "done")]
    assert api_requests(fake) == [FIRST_PAGE, f"{ALBUMS}second/"]
    assert media_requests(fake) == [file_path("second", second_pk)]


@pytest.mark.parametrize("slug", ["board-only", "secret", "no-such-album"])
def test_album_option_refuses_an_album_the_token_cannot_see(fake: FakeConcrexit, slug: str) -> None:
    fake.add_album("open", "Open", [tiny("red")])
    fake.add_album("board-only", "Board only", [tiny("green")], accessible=False)
    fake.add_album("secret", "Secret", [tiny("blue")], hidden=True)

    with pytest.raises(CommandError) as raised:
        import_command(album=slug)

    assert str(raised.value) == f"Import failed: no album '{slug}' at the source"
    assert (Album.objects.count(), Photo.objects.count()) == (0, 0)
    assert fake.requests == [("GET", FIRST_PAGE)]


def test_a_refused_token_fails_clearly_and_stores_nothing(fake: FakeConcrexit, settings) -> None:  # type: ignore[no-untyped-def]
    fake.add_album("open", "Open", [tiny("red")])
    settings.THALIA_ACCESS_TOKEN = "not-the-token"

    with pytest.raises(CommandError) as raised:
        import_command()

    assert str(raised.value) == (
        f"Import failed: {fake.base_url}{FIRST_PAGE}: HTTP 403 (the website refused the token: is it "
        "a member's token with scope photos:read, and unexpired? Run `manage.py connect_thalia` to reconnect)"
    )
    assert (Album.objects.count(), Photo.objects.count()) == (0, 0)
    assert fake.requests == [("GET", FIRST_PAGE)]


def test_a_missing_token_fails_before_any_request(fake: FakeConcrexit, settings) -> None:  # type: ignore[no-untyped-def]
    fake.add_album("open", "Open", [tiny("red")])
    settings.THALIA_ACCESS_TOKEN = ""

    with pytest.raises(CommandError) as raised:
        import_command()

    assert str(raised.value) == (
        "Import failed: no token for the website: run `manage.py connect_thalia` or set THALIA_ACCESS_TOKEN"
    )
    assert (Album.objects.count(), fake.requests) == (0, [])


# --- idempotence, changes ----------------------------------------------------------
def test_a_second_run_downloads_nothing_and_changes_nothing(fake: FakeConcrexit, examples: Path) -> None:
    member = member_with_reference(examples)
    fake.add_event(5, "Gala", dt.datetime(2023, 6, 1, 21, 0))
    pks = fake.add_album(
        "gala", "Gala", [examples / "obama2.jpg", examples / "biden.jpg", tiny("red")], event=5
    )
    first = import_run()
    assert first == ImportSummary(albums=1, photos_new=3, photos_encoded=3, faces=2, matches=1)
    before = snapshot()
    urls_before = dict(Photo.objects.values_list("source_id", "remote_urls"))
    start = len(fake.requests)

    second = import_run()

    assert second == ImportSummary(albums=1, photos_unchanged=3)
    assert snapshot() == before
    assert matched(member) == [(str(pks[0]), face_ids(pks[0])[0])]
    assert media_requests(fake, start) == []
    assert api_requests(fake, start) == [FIRST_PAGE, f"{ALBUMS}gala/"]  # the event date is known
    # Only the signed-URL cache moved on: same files, newly signed.
    for source_id, urls in Photo.objects.values_list("source_id", "remote_urls"):
        assert {v: urlsplit(u).path for v, u in urls.items()} == {
            v: urlsplit(u).path for v, u in urls_before[source_id].items()
        }


def test_a_replaced_photo_is_reencoded_and_a_removed_one_deleted(fake: FakeConcrexit, examples: Path) -> None:
    member = member_with_reference(examples)
    kept, replaced, removed = fake.add_album(
        "gala", "Gala", [tiny("red"), examples / "obama2.jpg", examples / "two_people.jpg"]
    )
    assert import_run() == ImportSummary(albums=1, photos_new=3, photos_encoded=3, faces=3, matches=2)
    old_faces, removed_faces = face_ids(replaced), face_ids(removed)
    assert (len(old_faces), len(removed_faces)) == (1, 2)
    old_matches = matched(member)
    assert [source_id for source_id, _ in old_matches] == sorted([str(replaced), str(removed)])
    kept_before = (
        Photo.objects.filter(source_id=str(kept)).values_list("id", "encoded_at", "content_hash").get()
    )
    replaced_id = photo(replaced).pk

    fake.replace_photo(replaced, examples / "obama3.jpg")
    fake.remove_photo(removed)
    start = len(fake.requests)
    summary = import_run()

    assert summary == ImportSummary(
        albums=1, photos_changed=1, photos_unchanged=1, photos_removed=1, photos_encoded=1, faces=1, matches=1
    )
    assert media_requests(fake, start) == [file_path("gala", replaced, version=1)]
    assert list(Photo.objects.order_by("id").values_list("source_id", flat=True)) == [
        str(kept),
        str(replaced),
    ]
    new = photo(replaced)
    assert (new.pk, new.origin, new.status, new.content_hash, new.width, new.height) == (
        replaced_id,
        file_path("gala", replaced, "full", version=1),
        "done",
        served_hash(fake, replaced),
        1180,
        1920,
    )
    new_faces = face_ids(replaced)
    assert len(new_faces) == 1
    assert not FaceEncoding.objects.filter(pk__in=old_faces + removed_faces).exists()
    assert not set(new_faces) & set(old_faces)
    assert matched(member) == [(str(replaced), new_faces[0])]
    assert Match.objects.count() == 1
    kept_after = (
        Photo.objects.filter(source_id=str(kept)).values_list("id", "encoded_at", "content_hash").get()
    )
    assert kept_after == kept_before


def test_an_album_hidden_at_the_site_is_kept_but_not_shown_until_it_is_back(
    fake: FakeConcrexit, examples: Path, client
) -> None:  # type: ignore[no-untyped-def]
    member = member_with_reference(examples)
    (pk,) = fake.add_album("gala", "Gala", [examples / "obama2.jpg"])
    fake.add_album("other", "Other", [tiny("red")])
    import_run()
    client.force_login(member)
    assert list(photos_api(client)) == [str(pk)]
    before = snapshot()

    fake._albums["gala"].hidden = True  # the fake has no public switch for this
    start = len(fake.requests)
    assert import_run() == ImportSummary(albums=1, photos_unchanged=1)

    assert list(Album.objects.order_by("source_id").values_list("source_id", "hidden", "missing")) == [
        ("gala", False, True),  # `hidden` is the admins' switch; imports set `missing`
        ("other", False, False),
    ]
    assert photos_api(client) == {}
    # Hidden, not deleted: photos, faces and matches stay for when it is back.
    assert {k: v for k, v in snapshot().items() if k != "albums"} == {
        k: v for k, v in before.items() if k != "albums"
    }
    assert api_requests(fake, start) == [FIRST_PAGE, f"{ALBUMS}other/"]

    fake._albums["gala"].hidden = False
    start = len(fake.requests)
    assert import_run() == ImportSummary(albums=2, photos_unchanged=2)

    assert snapshot() == before
    assert list(photos_api(client)) == [str(pk)]
    assert media_requests(fake, start) == []


# --- failures ------------------------------------------------------------------------
def test_a_refused_photo_file_is_recorded_and_imported_next_run(fake: FakeConcrexit) -> None:
    red, green, blue = fake.add_album("expo", "Expo", [tiny("red"), tiny("green"), tiny("blue")])
    fake.fail(file_path("expo", green), 403)

    first = import_run()

    assert first == ImportSummary(
        albums=1,
        photos_new=3,
        photos_encoded=2,
        photos_failed=1,
        errors=[f"photo {green}: download refused: HTTP 403"],
    )
    assert [
        (p.source_id, p.status, p.error, p.encoded_at is None, p.faces.count())
        for p in Photo.objects.order_by("id")
    ] == [
        (str(red), "done", "", False, 0),
        (str(green), "failed", "download refused: HTTP 403", True, 0),
        (str(blue), "done", "", False, 0),
    ]

    start = len(fake.requests)
    second = import_run()

    assert second == ImportSummary(albums=1, photos_changed=1, photos_unchanged=2, photos_encoded=1)
    assert media_requests(fake, start) == [file_path("expo", green)]
    assert list(Photo.objects.order_by("id").values_list("source_id", "status", "error")) == [
        (str(red), "done", ""),
        (str(green), "done", ""),
        (str(blue), "done", ""),
    ]
    assert photo(green).content_hash == served_hash(fake, green)


def test_urls_expiring_during_a_run_fail_those_photos_until_the_next_run(fake: FakeConcrexit) -> None:
    """The site's clock jumps past the URLs' lifetime once it has served the first file; Throwback's does not."""
    first_pk, *rest = fake.add_album("expo", "Expo", [tiny("red"), tiny("green"), tiny("blue")])
    serve = fake._serve_file

    def serve_then_jump(method: str, path: str, sig: str | None):  # type: ignore[no-untyped-def]
        response = serve(method, path, sig)
        fake.clock_offset_s = 4 * 3600
        return response

    fake._serve_file = serve_then_jump  # type: ignore[method-assign]
    first = import_run()
    fake._serve_file = serve  # type: ignore[method-assign]

    assert first == ImportSummary(
        albums=1,
        photos_new=3,
        photos_encoded=1,
        photos_failed=2,
        errors=[f"photo {pk}: download refused: HTTP 403" for pk in rest],
    )
    assert list(Photo.objects.order_by("id").values_list("status", flat=True)) == ["done", "failed", "failed"]

    second = import_run()

    assert second == ImportSummary(albums=1, photos_changed=2, photos_unchanged=1, photos_encoded=2)
    assert list(Photo.objects.order_by("id").values_list("status", "error")) == [("done", "")] * 3


def test_a_long_run_refreshes_stale_urls_between_chunks(fake: FakeConcrexit, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Photos are claimed and given URLs 8 at a time (one worker); once the
    URLs Throwback holds have gone stale, the next chunk fetches fresh ones."""
    monkeypatch.setattr("faces.imports.importer.BATCH_PHOTOS", 1)  # progress after every photo
    colors = ["red", "green", "blue", "yellow", "white", "black", "orange", "purple", "pink"]
    pks = fake.add_album("marathon", "Marathon", [tiny(c) for c in colors])

    def progress(done: int, total: int) -> None:
        if done == 1:  # the second chunk is made after the fifth photo at the earliest
            Photo.objects.update(urls_fetched_at=F("urls_fetched_at") - dt.timedelta(hours=4))

    summary = import_run(progress=progress)

    assert summary == ImportSummary(albums=1, photos_new=9, photos_encoded=9)
    assert list(Photo.objects.order_by("id").values_list("status", flat=True)) == ["done"] * 9
    assert api_requests(fake) == [FIRST_PAGE, f"{ALBUMS}marathon/", f"{ALBUMS}marathon/"]
    assert media_requests(fake) == [file_path("marathon", pk) for pk in pks]
    signatures = {urlsplit(path).path: urlsplit(path).query for _, path in fake.requests if "/media/" in path}
    now_stored = {pk: urlsplit(photo(pk).remote_urls["large"]) for pk in pks}
    assert signatures[now_stored[pks[-1]].path] == now_stored[pks[-1]].query  # downloaded with the fresh URL
    assert signatures[now_stored[pks[0]].path] != now_stored[pks[0]].query  # with the first one


def test_a_failing_album_detail_is_reported_and_other_albums_import(fake: FakeConcrexit) -> None:
    fake.add_album("broken", "Broken", [tiny("red")])
    fake.add_album("html", "Maintenance page", [tiny("green")])
    (fine_pk,) = fake.add_album("fine", "Fine", [tiny("blue")])
    fake.fail(f"{ALBUMS}broken/", 503)
    fake.fail(f"{ALBUMS}html/", 200, body=b"<html><body>Back soon</body></html>", content_type="text/html")

    first = import_run()

    base = fake.base_url
    assert first == ImportSummary(
        albums=1,
        photos_new=1,
        photos_encoded=1,
        errors=[
            f"album broken: {base}{ALBUMS}broken/: HTTP 503",
            f"album html: {base}{ALBUMS}html/: the answer is not JSON",
        ],
    )
    assert list(Album.objects.values_list("source_id", "missing")) == [("fine", False)]
    assert list(Photo.objects.values_list("source_id", "status")) == [(str(fine_pk), "done")]

    # The faults are gone: the next run (the command) imports both, and reports no error.
    numbers, errors = import_command()

    assert numbers == [3, 2, 0, 1, 0, 2, 0, 0, 0]
    assert errors == ""
    assert sorted(Album.objects.values_list("source_id", flat=True)) == ["broken", "fine", "html"]
    assert set(Photo.objects.values_list("status", flat=True)) == {"done"}


def test_the_command_lists_errors_on_stderr(fake: FakeConcrexit) -> None:
    (red,) = fake.add_album("expo", "Expo", [tiny("red")])
    fake.add_album("broken", "Broken", [tiny("green")])
    fake.fail(f"{ALBUMS}broken/", 503)
    fake.fail(file_path("expo", red), 403)

    numbers, errors = import_command()

    assert numbers == [1, 1, 0, 0, 0, 0, 1, 0, 0]
    assert errors == (
        f"  album broken: {fake.base_url}{ALBUMS}broken/: HTTP 503\n  photo {red}: download refused: HTTP 403\n"
    )


# --- matching ----------------------------------------------------------------------
def test_matching_works_for_references_added_before_and_after_the_import(
    fake: FakeConcrexit, examples: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    # Jittered encodings are random: one jitter makes both uploads of the selfie the same vector.
    settings.THROWBACK_SELFIE_JITTERS = 1
    # Two members with the same selfie: one face, one person would give every face to the
    # first; this test is about the two directions of the distance SQL, not that rule.
    settings.THROWBACK_ONE_FACE_ONE_PERSON = False
    before = member_with_reference(examples, username="before")
    obama2, obama3, biden, two_people = fake.add_album(
        "summit",
        "Summit",
        [examples / n for n in ("obama2.jpg", "obama3.jpg", "biden.jpg", "two_people.jpg")],
    )

    summary = import_run()

    assert summary == ImportSummary(albums=1, photos_new=4, photos_encoded=4, faces=5, matches=3)
    assert [len(face_ids(pk)) for pk in (obama2, obama3, biden, two_people)] == [1, 1, 1, 2]
    matched_before = matched(before)
    assert [source_id for source_id, _ in matched_before] == sorted(
        [str(obama2), str(obama3), str(two_people)]
    )
    # In two_people.jpg only Obama (on the left) is matched, not Biden.
    (two_people_face,) = [face for source_id, face in matched_before if source_id == str(two_people)]
    faces = sorted(FaceEncoding.objects.filter(photo__source_id=str(two_people)), key=lambda f: f.left)
    assert two_people_face == faces[0].pk
    assert all(0.0 <= d < 0.49 for d in Match.objects.values_list("distance", flat=True))

    after = member_with_reference(examples, username="after")

    assert matched(after) == matched_before
    # The same distances, up to single precision (the import computes them over `real` columns).
    distances_before = dict(Match.objects.filter(member=before).values_list("face_id", "distance"))
    distances_after = dict(Match.objects.filter(member=after).values_list("face_id", "distance"))
    assert distances_after == pytest.approx(distances_before, abs=1e-6)
    assert Match.objects.count() == 6


# --- the signed-URL cache behind GET /api/photos/ ------------------------------------
SITE_URL_LIFETIME_S = 3600
CACHE_TTL_S = 3000


@pytest.fixture
def url_lifetimes(fake: FakeConcrexit, settings) -> FakeConcrexit:  # type: ignore[no-untyped-def]
    """URLs live an hour at the site; Throwback treats them as good for 50 minutes.

    Long enough that a slow machine never sees a URL expire by itself: time
    passes only through `time_passes`.
    """
    settings.THALIA_URL_TTL_SECONDS = CACHE_TTL_S
    settings.THALIA_URL_REFRESH_MARGIN_SECONDS = 0
    fake.url_max_age_s = SITE_URL_LIFETIME_S
    return fake


def time_passes(fake: FakeConcrexit, seconds: float) -> None:
    """`seconds` pass for the site (its clock, which signs and checks the URLs)
    and for Throwback's URL cache (the stored fetch times move back), without sleeping."""
    fake.clock_offset_s += seconds
    Photo.objects.update(urls_fetched_at=F("urls_fetched_at") - dt.timedelta(seconds=seconds))


def photos_api(client) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    response = client.get("/api/photos/")
    assert response.status_code == 200
    return {item["source_id"]: item["url"] for item in response.json()["results"]}


def sig(url: str) -> str:
    return parse_qs(urlsplit(url).query)["sig"][0]


def test_photos_api_refreshes_expired_urls_with_one_request_per_album(
    url_lifetimes: FakeConcrexit, examples: Path, client
) -> None:  # type: ignore[no-untyped-def]
    fake = url_lifetimes
    member = member_with_reference(examples)
    alpha = fake.add_album("alpha", "Alpha", [examples / "obama2.jpg", examples / "two_people.jpg"])
    beta = fake.add_album("beta", "Beta", [examples / "obama3.jpg"])
    fake.add_album("gamma", "Gamma", [examples / "biden.jpg"])  # nobody's match: never refreshed
    assert import_run().matches == 3
    client.force_login(member)
    cached = dict(Photo.objects.values_list("source_id", "remote_urls"))
    fresh = {str(pk): cached[str(pk)]["large"] for pk in [*alpha, *beta]}
    for url in fresh.values():
        assert requests.get(url, timeout=10).status_code == 200

    time_passes(fake, SITE_URL_LIFETIME_S + 1)  # past Throwback's TTL and the site's lifetime
    for url in fresh.values():
        assert requests.get(url, timeout=10).status_code == 403  # the cached URLs are dead now
    start = len(fake.requests)
    refreshed = photos_api(client)

    assert sorted(api_requests(fake, start)) == [f"{ALBUMS}alpha/", f"{ALBUMS}beta/"]
    assert set(refreshed) == set(fresh)
    for source_id, url in refreshed.items():
        assert url is not None
        assert urlsplit(url).path == urlsplit(fresh[source_id]).path
        assert sig(url) != sig(fresh[source_id])
        assert requests.get(url, timeout=10).status_code == 200
    # Stored for the next page view, which asks the site nothing.
    assert {s: u["large"] for s, u in Photo.objects.values_list("source_id", "remote_urls")} == {
        **{s: u["large"] for s, u in cached.items()},
        **refreshed,
    }
    start = len(fake.requests)
    assert photos_api(client) == refreshed
    assert fake.requests[start:] == []


def test_photos_api_never_hands_out_an_expired_url_while_the_site_is_down(
    url_lifetimes: FakeConcrexit, examples: Path, client
) -> None:  # type: ignore[no-untyped-def]
    fake = url_lifetimes
    member = member_with_reference(examples)
    (pk,) = fake.add_album("alpha", "Alpha", [examples / "obama2.jpg"])
    assert import_run().matches == 1
    client.force_login(member)
    stored = Photo.objects.get().remote_urls["large"]

    fake.down = True
    start = len(fake.requests)
    assert photos_api(client) == {str(pk): stored}  # still good: no request
    assert fake.requests[start:] == []
    time_passes(fake, SITE_URL_LIFETIME_S + 1)  # past Throwback's TTL and the site's lifetime
    start = len(fake.requests)

    assert photos_api(client) == {str(pk): None}
    assert api_requests(fake, start) == [f"{ALBUMS}alpha/"]  # tried once, got 503

    # The failure is remembered for a minute: the next page view waits for nothing.
    fake.down = False
    assert requests.get(stored, timeout=10).status_code == 403  # the stored URL is dead at the site
    start = len(fake.requests)
    assert photos_api(client) == {str(pk): None}
    assert api_requests(fake, start) == []

    cache.clear()  # the minute has passed
    back = photos_api(client)

    assert api_requests(fake, start) == [f"{ALBUMS}alpha/"]
    assert back[str(pk)] is not None
    assert requests.get(back[str(pk)], timeout=10).status_code == 200


def test_a_malformed_entry_for_a_stored_photo_keeps_it_and_is_reported(
    fake: FakeConcrexit, examples: Path
) -> None:
    member = member_with_reference(examples)
    good, odd = fake.add_album("alpha", "Alpha", [examples / "obama2.jpg", examples / "obama3.jpg"])
    import_run()
    before = snapshot()
    detail = requests.get(
        f"{fake.base_url}{ALBUMS}alpha/", headers={"Authorization": f"Bearer {fake.token}"}, timeout=10
    ).json()
    for item in detail["photos"]:
        if item["pk"] == odd:
            item["file"]["full"] = "https://cdn.elsewhere.example/photo.jpg"
    fake.fail(f"{ALBUMS}alpha/", 200, body=json.dumps(detail).encode())

    summary = import_run()

    assert summary.photos_removed == 0
    assert summary.errors == [
        f"photo {odd}: skipped, file URL on an unexpected host: https://cdn.elsewhere.example"
    ]
    assert snapshot() == before
    assert sorted(s for s, _ in matched(member)) == sorted([str(good), str(odd)])


def test_the_token_never_goes_to_another_origin_or_over_plain_http() -> None:
    source = ConcrexitSource("https://site.example", "secret", file_hosts=("cdn.example",))
    for url in (
        "http://site.example/api/v2/photos/albums/?offset=50",  # downgraded scheme
        "https://cdn.example/api/v2/photos/albums/",  # the CDN gets no token
        "https://site.example.evil.example/api/",
    ):
        with pytest.raises(SourceError, match="not the website's address"):
            source._check_url(url)
    source._check_url("https://site.example/api/v2/photos/albums/?offset=50")
    assert source.file_origins == ("https://site.example", "https://cdn.example")


def test_a_next_link_to_another_origin_gets_no_token(fake: FakeConcrexit) -> None:
    fake.add_album("alpha", "Alpha", [tiny("red")])
    port = fake.base_url.rsplit(":", 1)[1]
    elsewhere = f"http://localhost:{port}{ALBUMS}?limit=50&offset=50"  # same server, other origin
    page = {"count": 2, "next": elsewhere, "previous": None, "results": []}
    fake.fail(FIRST_PAGE, 200, body=json.dumps(page).encode())

    with pytest.raises(CommandError, match="not the website's address"):
        import_command()

    assert api_requests(fake) == [FIRST_PAGE]
    assert not Album.objects.exists()


def test_album_pages_that_loop_stop_the_run(fake: FakeConcrexit) -> None:
    page = {"count": 99, "next": f"{fake.base_url}{FIRST_PAGE}", "previous": None, "results": []}
    fake.fail(FIRST_PAGE, 200, body=json.dumps(page).encode(), times=5)

    with pytest.raises(CommandError, match="album pages loop at"):
        import_command()
    assert api_requests(fake) == [FIRST_PAGE]


def test_malformed_answers_are_reported_per_album(fake: FakeConcrexit) -> None:
    fake.add_album("odd", "Odd", [tiny("red")])
    fake.add_album("fine", "Fine", [tiny("green")])
    fake.fail(f"{ALBUMS}odd/", 200, body=b'{"detail": "no photos key"}')

    summary = import_run()

    assert summary.errors == ["album odd: no photo list in the album's answer"]
    assert summary.albums == 1 and summary.photos_encoded == 1
    assert list(Album.objects.values_list("source_id", flat=True)) == ["fine"]


def test_a_page_that_is_not_a_page_of_albums_stops_the_run(fake: FakeConcrexit) -> None:
    fake.fail(FIRST_PAGE, 200, body=b'["not", "a", "page"]')
    with pytest.raises(CommandError, match="not a page of albums"):
        import_command()
