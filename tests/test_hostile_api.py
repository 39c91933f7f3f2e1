"""A hostile or broken website: the concrexit API answering badly.

Every case starts from one clean import (two albums, a member matched in a
real photo), breaks one answer of the fake site, and imports again. The run
either stops with a clear CommandError or records per-album / per-photo
errors, and what was stored before is still there. The fake and a "rogue
CDN" for file downloads run over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command

from faces.models import Album, Photo
from members.models import Member
from tests.fake_concrexit import FakeConcrexit
from tests.test_import_concrexit import (
    ALBUMS,
    FIRST_PAGE,
    api_requests,
    file_path,
    import_run,
    matched,
    member_with_reference,
    snapshot,
    tiny,
)

pytestmark = pytest.mark.django_db

HTML = b"<!doctype html><html><body><h1>Down for maintenance</h1></body></html>"


@dataclass
class Site:
    fake: FakeConcrexit
    member: Member
    obama: int  # pk of the real photo the member is matched in
    red: int
    green: int

    def detail(self, slug: str = "expo") -> dict[str, Any]:
        """The album detail exactly as the site answers it now, to be broken by a test."""
        response = requests.get(
            f"{self.fake.base_url}{ALBUMS}{slug}/",
            headers={"Authorization": f"Bearer {self.fake.token}"},
            timeout=10,
        )
        assert response.status_code == 200
        return response.json()

    def page(self) -> dict[str, Any]:
        response = requests.get(
            f"{self.fake.base_url}{FIRST_PAGE}",
            headers={"Authorization": f"Bearer {self.fake.token}"},
            timeout=10,
        )
        return response.json()


@pytest.fixture
def site(fake_concrexit: FakeConcrexit, media_root: Path, examples: Path, settings) -> Site:  # type: ignore[no-untyped-def]
    """Two albums imported once; barack matched in the real photo of expo.

    Photos are encoded from the site's small (300 px) variant: the fake
    renders it quickly and the faces are still found.
    """
    settings.THALIA_ENCODE_VARIANT = "small"
    fake = fake_concrexit
    member = member_with_reference(examples)
    obama, red = fake.add_album("expo", "Expo", [examples / "obama2.jpg", tiny("red")])
    (green,) = fake.add_album("fair", "Fair", [tiny("green")])
    first = import_run()
    assert (first.albums, first.photos_encoded, first.photos_failed, first.matches) == (2, 3, 0, 1)
    return Site(fake, member, obama, red, green)


def command() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_albums", workers=1, no_progress=True, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def without(
    state: dict[str, list[tuple[object, ...]]], source_id: str
) -> dict[str, list[tuple[object, ...]]]:
    """The snapshot without one photo's row (the one a test breaks)."""
    return {**state, "photos": [row for row in state["photos"] if row[2] != source_id]}


# --- the album list: the run stops, nothing changes -----------------------------------------------
LIST_FAULTS: list[tuple[str, int, bytes, str, str]] = [
    (
        "malformed JSON",
        200,
        b'{"count": 2, "results": [{"slug": "ex',
        "application/json",
        "the answer is not JSON",
    ),
    ("HTML page with 200", 200, HTML, "text/html", "the answer is not JSON"),
    ("empty body", 200, b"", "application/json", "the answer is not JSON"),
    ("JSON null", 200, b"null", "application/json", "not a page of albums"),
    (
        "results of the wrong type",
        200,
        b'{"count": 1, "results": "expo"}',
        "application/json",
        "not a page of albums",
    ),
    ("429 too many requests", 429, b'{"detail": "slow down"}', "application/json", "HTTP 429"),
    ("500 with an HTML page", 500, HTML, "text/html", "HTTP 500"),
    ("502 bad gateway", 502, HTML, "text/html", "HTTP 502"),
    ("503 unavailable", 503, HTML, "text/html", "HTTP 503"),
    ("504 gateway time-out", 504, HTML, "text/html", "HTTP 504"),
    ("401 instead of 403", 401, b'{"detail": "no"}', "application/json", "HTTP 401"),
    ("302 redirect (not followed)", 302, b"", "text/html", "HTTP 302"),
]


@pytest.mark.parametrize(
    ("case", "status", "body", "content_type", "message"), LIST_FAULTS, ids=[c[0] for c in LIST_FAULTS]
)
def test_a_broken_album_list_stops_the_run_and_changes_nothing(
    site: Site, case: str, status: int, body: bytes, content_type: str, message: str
) -> None:
    before = snapshot()
    site.fake.fail(FIRST_PAGE, status, body=body, content_type=content_type)
    with pytest.raises(CommandError, match=f"^Import failed: .*{message}"):
        command()
    assert snapshot() == before
    assert not Album.objects.filter(missing=True).exists()
    assert matched(site.member) != []


def test_an_album_list_that_times_out_stops_the_run_and_changes_nothing(site: Site, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_TIMEOUT_SECONDS = 0.3
    site.fake.delay_s = 1.0
    before = snapshot()
    # Before: "…: ConnectionError" (urllib3's retry wraps the read time-out).
    with pytest.raises(
        CommandError, match=r"^Import failed: .*albums/\?limit=50&offset=0: timed out after 0\.3 s$"
    ):
        command()
    site.fake.delay_s = 0
    assert snapshot() == before


def test_a_slow_site_within_the_time_out_imports_normally(site: Site, examples: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_TIMEOUT_SECONDS = 10
    site.fake.delay_s = 0.3
    site.fake.add_album("late", "Late", [examples / "obama3.jpg"])
    out, err = command()
    assert (
        "Imported 3 albums: 1 new, 0 changed or retried, 3 unchanged, 0 removed photos; 1 encoded, 0 failed"
        in out
    )
    assert err == ""
    assert len(matched(site.member)) == 2


def test_a_429_is_retried_and_the_run_succeeds(site: Site, examples: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_RETRIES = 2
    site.fake.add_album("late", "Late", [examples / "obama3.jpg"])
    site.fake.fail(FIRST_PAGE, 429, times=1)
    site.fake.fail(f"{ALBUMS}late/", 503, times=1)
    out, err = command()
    assert "Imported 3 albums: 1 new" in out and "1 encoded, 0 failed" in out
    assert err == ""
    assert api_requests(site.fake).count(FIRST_PAGE) == 3  # first import, the 429, the retry


def test_a_next_link_of_the_wrong_type_ends_the_listing(site: Site) -> None:
    page = {**site.page(), "next": 2}
    site.fake.fail(FIRST_PAGE, 200, body=json.dumps(page).encode())
    before = snapshot()
    out, _ = command()
    assert "Imported 2 albums: 0 new, 0 changed or retried, 3 unchanged" in out
    assert snapshot() == before


# --- album entries in the list --------------------------------------------------------------------
def test_malformed_album_entries_are_skipped_and_others_imported(site: Site, examples: Path) -> None:
    page = site.page()
    good = page["results"]
    page["results"] = [
        *good,
        "not an object",
        {"title": "No slug"},
        {"slug": "", "title": "Empty slug"},
        {"slug": "typed", "title": 12345},
        {"slug": ["a"], "title": "List slug"},
        {
            "slug": "extra",
            "title": "Extra fields",
            "accessible": True,
            "unexpected": {"deep": [1, 2]},
            "event": "x",
        },
    ]
    site.fake.add_album("extra", "Extra fields", [examples / "obama3.jpg"])
    site.fake.fail(FIRST_PAGE, 200, body=json.dumps(page).encode())
    before = snapshot()
    out, err = command()
    assert "Imported 3 albums: 1 new, 0 changed or retried, 3 unchanged" in out
    assert err == ""
    after = snapshot()
    assert after["photos"][: len(before["photos"])] == before["photos"]
    assert after["matches"][: len(before["matches"])] == before["matches"]
    assert Album.objects.get(source_id="extra").date is None  # "event": "x" is no event id
    assert sorted(Album.objects.values_list("source_id", flat=True)) == ["expo", "extra", "fair"]


def test_an_album_with_a_traversal_slug_stays_under_the_albums_path(site: Site) -> None:
    page = site.page()
    page["results"].append({"slug": "../../../admin/?x=", "title": "Sneaky"})
    site.fake.fail(FIRST_PAGE, 200, body=json.dumps(page).encode())
    before = snapshot()
    start = len(site.fake.requests)
    out, err = command()
    sneaky = f"{ALBUMS}..%2F..%2F..%2Fadmin%2F%3Fx%3D/"
    assert sneaky in api_requests(site.fake, start)
    assert all(
        path.startswith(("/api/v2/photos/albums/", "/api/v2/events/"))
        for path in api_requests(site.fake, start)
    )
    assert f"album ../../../admin/?x=: {site.fake.base_url}{sneaky}: HTTP 404" in err
    assert "Imported 2 albums" in out
    assert snapshot() == before


def test_a_very_long_unicode_title_is_cut_to_fit(site: Site) -> None:
    page = site.page()
    page["results"][0]["title"] = "Gala 🎉 " + "ĳ" * 5000
    site.fake.fail(FIRST_PAGE, 200, body=json.dumps(page).encode())
    command()
    title = Album.objects.get(source_id="expo").title
    assert len(title) == 255 and title.startswith("Gala 🎉 ĳĳ")


def test_a_broken_event_answer_leaves_the_album_undated(site: Site, examples: Path) -> None:
    site.fake.add_event(7, "Borrel", dt.datetime(2024, 5, 1, 20))
    site.fake.add_album("borrel", "Borrel", [examples / "obama3.jpg"], event=7)
    site.fake.fail("/api/v2/events/7/", 200, body=b'{"pk": 7, "start": "yesterday"}')
    out, err = command()
    assert "Imported 3 albums: 1 new" in out and err == ""
    assert Album.objects.get(source_id="borrel").date is None


# --- one album's detail: that album is reported, the rest imports ---------------------------------
DETAIL_FAULTS: list[tuple[str, int, bytes, str]] = [
    ("malformed JSON", 200, b'{"slug": "expo", "photos": [{"pk": 1', "the answer is not JSON"),
    ("HTML page with 200", 200, HTML, "the answer is not JSON"),
    ("no photo list", 200, b'{"slug": "expo", "title": "Expo"}', "no photo list in the album's answer"),
    (
        "photos of the wrong type",
        200,
        b'{"slug": "expo", "photos": {"1": {}}}',
        "no photo list in the album's answer",
    ),
    ("a JSON list", 200, b"[]", "no photo list in the album's answer"),
    ("429", 429, b"{}", "HTTP 429"),
    ("500", 500, HTML, "HTTP 500"),
    ("404 (album gone or hidden)", 404, b"{}", "HTTP 404"),
]


@pytest.mark.parametrize(
    ("case", "status", "body", "message"), DETAIL_FAULTS, ids=[c[0] for c in DETAIL_FAULTS]
)
def test_a_broken_album_detail_keeps_that_albums_photos(
    site: Site, examples: Path, case: str, status: int, body: bytes, message: str
) -> None:
    before = snapshot()
    site.fake.add_album("late", "Late", [examples / "obama3.jpg"])
    site.fake.fail(
        f"{ALBUMS}expo/", status, body=body, content_type="text/html" if body == HTML else "application/json"
    )
    out, err = command()
    assert (
        "Imported 2 albums: 1 new, 0 changed or retried, 1 unchanged, 0 removed photos; 1 encoded, 0 failed"
        in out
    )
    assert err.startswith("  album expo: ") and err.rstrip().endswith(message)
    after = snapshot()
    assert after["photos"][: len(before["photos"])] == before["photos"]
    assert after["faces"][: len(before["faces"])] == before["faces"]
    assert after["matches"][: len(before["matches"])] == before["matches"]
    assert len(matched(site.member)) == 2


PHOTO_ENTRY_FAULTS: list[tuple[str, Any, str]] = [
    ("pk as a string", lambda e: {**e, "pk": str(e["pk"])}, "no integer pk"),
    ("pk missing", lambda e: {k: v for k, v in e.items() if k != "pk"}, "no integer pk"),
    ("pk a boolean", lambda e: {**e, "pk": True}, "no integer pk"),
    ("file missing", lambda e: {k: v for k, v in e.items() if k != "file"}, "no file URLs"),
    ("file a list", lambda e: {**e, "file": list(e["file"].values())}, "no file URLs"),
    (
        "no full-size URL",
        lambda e: {**e, "file": {k: v for k, v in e["file"].items() if k != "full"}},
        "no full-size file URL",
    ),
    ("URL of the wrong type", lambda e: {**e, "file": {**e["file"], "full": 42}}, "no full-size file URL"),
    (
        "URL on another host",
        lambda e: {**e, "file": {**e["file"], "full": "https://evil.example/x.jpg"}},
        "file URL on an unexpected host: https://evil.example",
    ),
    (
        "javascript: URL",
        lambda e: {**e, "file": {**e["file"], "large": "javascript:alert(1)"}},
        "file URL on an unexpected host: javascript://",
    ),
    ("entry not an object", lambda e: [e], "not an object"),
]


@pytest.mark.parametrize(
    ("case", "breaker", "reason"), PHOTO_ENTRY_FAULTS, ids=[c[0] for c in PHOTO_ENTRY_FAULTS]
)
def test_a_malformed_entry_for_a_stored_photo_keeps_the_photo_and_its_match(
    site: Site, case: str, breaker, reason: str
) -> None:  # type: ignore[no-untyped-def]
    before = snapshot()
    detail = site.detail()
    detail["photos"] = [breaker(e) if e["pk"] == site.obama else e for e in detail["photos"]]
    site.fake.fail(f"{ALBUMS}expo/", 200, body=json.dumps(detail).encode())
    out, err = command()
    assert "0 new, 0 changed or retried, 2 unchanged, 0 removed photos; 0 encoded, 0 failed" in out
    assert reason in err
    assert snapshot() == before
    assert [source_id for source_id, _ in matched(site.member)] == [str(site.obama)]


def test_extra_and_unexpected_fields_are_ignored(site: Site) -> None:
    detail = site.detail()
    detail["unexpected"] = {"nested": [None, True]}
    for entry in detail["photos"]:
        entry["extra"] = "<script>alert(1)</script>"
        entry["file"]["huge"] = "https://evil.example/ignored-variant.jpg"
    site.fake.fail(f"{ALBUMS}expo/", 200, body=json.dumps(detail).encode())
    before = snapshot()
    out, err = command()
    assert "0 new, 0 changed or retried, 3 unchanged" in out and err == ""
    assert snapshot() == before


def test_a_photo_listed_twice_is_imported_once(site: Site, examples: Path) -> None:
    (late,) = site.fake.add_album("late", "Late", [examples / "obama3.jpg"])
    detail = site.detail("late")
    detail["photos"] = detail["photos"] * 2
    site.fake.fail(f"{ALBUMS}late/", 200, body=json.dumps(detail).encode())
    before = snapshot()
    out, err = command()
    assert (
        "Imported 3 albums: 1 new, 0 changed or retried, 3 unchanged, 0 removed photos; 1 encoded, 0 failed"
        in out
    )
    assert err == f"  photo entry 1: skipped, photo {late} listed twice\n"
    assert Photo.objects.filter(source_id=str(late)).count() == 1
    after = snapshot()
    assert after["matches"][: len(before["matches"])] == before["matches"]


# --- photo files ----------------------------------------------------------------------------------
class _Rogue(BaseHTTPRequestHandler):
    """A file host that misbehaves in every way a download can."""

    protocol_version = "HTTP/1.1"
    image = tiny("blue")

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        path = self.path.split("?")[0]
        port = self.server.server_address[1]
        if path == "/away.jpg":
            self._send(302, b"", Location=f"http://localhost:{port}/img.jpg")
        elif path == "/home.jpg":
            self._send(302, b"", Location="/img.jpg")
        elif path == "/loop.jpg":
            self._send(302, b"", Location="/loop.jpg")
        elif path == "/img.jpg":
            self._send(200, self.image, **{"Content-Type": "image/png"})
        elif path == "/html.jpg":
            self._send(200, HTML, **{"Content-Type": "text/html"})
        elif path == "/short.jpg":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(self.image[:100])
            self.close_connection = True
        elif path == "/slow.jpg":
            time.sleep(1.5)
            self._send(200, self.image)
        elif path == "/forbidden.jpg":
            self._send(403, HTML)
        else:
            self._send(404, b"")

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def rogue(settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The rogue file host, allowed as the site's CDN; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Rogue)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.THALIA_FILE_HOSTS = [f"127.0.0.1:{server.server_address[1]}"]
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


FILE_FAULTS: list[tuple[str, str, str]] = [
    ("redirect to another host", "/away.jpg", "refusing to download from 'http://localhost:{port}'"),
    ("redirect loop", "/loop.jpg", "too many redirects"),
    ("HTML page with 200", "/html.jpg", "not a readable image (UnidentifiedImageError)"),
    ("connection cut short", "/short.jpg", "download failed: the connection broke off"),
    ("time-out", "/slow.jpg", "download failed: timed out after 0.5 s"),
    ("403 on the file", "/forbidden.jpg", "download refused: HTTP 403"),
    ("404 on the file", "/missing.jpg", "download refused: HTTP 404"),
]


@pytest.mark.parametrize(("case", "path", "error"), FILE_FAULTS, ids=[c[0] for c in FILE_FAULTS])
def test_a_bad_file_download_fails_that_photo_only(
    site: Site, rogue: str, settings, case: str, path: str, error: str
) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_TIMEOUT_SECONDS = 0.5
    before = snapshot()
    detail = site.detail()
    for entry in detail["photos"]:
        if entry["pk"] == site.red:
            entry["file"] = {variant: f"{rogue}{path}?variant={variant}" for variant in entry["file"]}
    site.fake.fail(f"{ALBUMS}expo/", 200, body=json.dumps(detail).encode())

    out, err = command()

    port = rogue.rsplit(":", 1)[1]
    expected = error.format(port=port)
    assert "0 new, 1 changed or retried, 2 unchanged, 0 removed photos; 0 encoded, 1 failed" in out
    assert err == f"  photo {site.red}: {expected}\n"
    red = Photo.objects.get(source_id=str(site.red))
    assert (red.status, red.error) == ("failed", expected)
    assert without(snapshot(), str(site.red)) == without(before, str(site.red))


def test_a_redirect_within_the_allowed_host_is_followed(site: Site, rogue: str) -> None:
    detail = site.detail()
    for entry in detail["photos"]:
        if entry["pk"] == site.red:
            entry["file"] = {variant: f"{rogue}/home.jpg?v={variant}" for variant in entry["file"]}
    site.fake.fail(f"{ALBUMS}expo/", 200, body=json.dumps(detail).encode())
    out, err = command()
    assert "1 changed or retried, 2 unchanged, 0 removed photos; 1 encoded, 0 failed" in out and err == ""
    assert Photo.objects.get(source_id=str(site.red)).status == "done"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_server_error_on_a_file_is_retried_next_run(site: Site, examples: Path, status: int) -> None:
    (late,) = site.fake.add_album("late", "Late", [examples / "obama3.jpg"])
    site.fake.fail(file_path("late", late, "small"), status, body=HTML, content_type="text/html")
    before = snapshot()
    out, err = command()
    assert "1 new, 0 changed or retried, 3 unchanged, 0 removed photos; 0 encoded, 1 failed" in out
    assert err == f"  photo {late}: download failed: HTTP {status}\n"
    after = snapshot()
    assert after["photos"][: len(before["photos"])] == before["photos"]
    out, err = command()
    assert "0 new, 1 changed or retried, 3 unchanged, 0 removed photos; 1 encoded, 0 failed" in out
    assert len(matched(site.member)) == 2


def test_an_html_page_served_as_a_photo_file_fails_that_photo(site: Site, examples: Path) -> None:
    (late,) = site.fake.add_album("late", "Late", [examples / "obama3.jpg"])
    site.fake.fail(file_path("late", late, "small"), 200, body=HTML, content_type="image/jpeg")
    out, err = command()
    assert err == f"  photo {late}: not a readable image (UnidentifiedImageError)\n"
    assert Photo.objects.get(source_id=str(late)).status == "failed"
    assert len(matched(site.member)) == 1
