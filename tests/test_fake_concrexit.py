"""Checks that the concrexit fake keeps the contract the album importer's tests rely on."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from PIL import Image

try:  # works whether or not tests/ is a package
    from tests.fake_concrexit import FakeConcrexit
except ImportError:  # pragma: no cover
    from fake_concrexit import FakeConcrexit

ALBUMS = "/api/v2/photos/albums/"


def image_bytes(size: tuple[int, int] = (64, 48), color: str = "red", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def fake() -> Iterator[FakeConcrexit]:
    with FakeConcrexit() as server:
        yield server


def api(fake: FakeConcrexit, path: str) -> requests.Response:
    return requests.get(
        fake.base_url + path,
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=10,
    )


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


def test_api_requires_valid_bearer_token(fake: FakeConcrexit) -> None:
    url = fake.base_url + ALBUMS
    missing = get(url)
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert missing.status_code == 403
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    assert wrong.status_code == 403
    assert api(fake, ALBUMS).status_code == 200
    fake.tokens.add("second")
    assert requests.get(url, headers={"Authorization": "Bearer second"}, timeout=10).status_code == 200
    assert fake.requests == [("GET", ALBUMS)] * 4


def test_pagination_has_absolute_links(fake: FakeConcrexit) -> None:
    for i in range(120):
        fake.add_album(f"album-{i:03d}", f"Album {i}", [])
    base = fake.base_url + ALBUMS

    first = api(fake, ALBUMS).json()
    assert first["count"] == 120
    assert first["previous"] is None
    assert first["next"] == f"{base}?limit=50&offset=50"
    assert [a["slug"] for a in first["results"]] == [f"album-{i:03d}" for i in range(50)]

    second = requests.get(first["next"], headers={"Authorization": f"Bearer {fake.token}"}, timeout=10).json()
    assert second["previous"] == f"{base}?limit=50"
    assert second["next"] == f"{base}?limit=50&offset=100"
    assert len(second["results"]) == 50

    third = api(fake, f"{ALBUMS}?limit=50&offset=100").json()
    assert third["previous"] == f"{base}?limit=50&offset=50"
    assert third["next"] is None
    assert [a["slug"] for a in third["results"]] == [f"album-{i:03d}" for i in range(100, 120)]

    small = api(fake, f"{ALBUMS}?limit=7&offset=3").json()
    assert (small["next"], small["previous"]) == (
        f"{base}?limit=7&offset=10",
        f"{base}?limit=7",
    )
    assert len(small["results"]) == 7


def test_album_list_and_detail_fields(fake: FakeConcrexit) -> None:
    pks = fake.add_album(
        "borrel",
        "Borrel",
        [image_bytes(), image_bytes(color="blue")],
        event=7,
        shareable=True,
    )
    more = fake.add_album("gala", "Gala", [image_bytes()])
    assert pks == [1, 2]
    assert more == [3]
    fake.set_likes(2, 5, liked=True)

    listed = api(fake, ALBUMS).json()["results"][0]
    assert {k: v for k, v in listed.items() if k != "cover"} == {
        "slug": "borrel",
        "title": "Borrel",
        "accessible": True,
        "shareable": True,
        "event": 7,
    }
    assert listed["cover"]["pk"] == 1

    detail = api(fake, f"{ALBUMS}borrel/").json()
    assert set(detail) == {
        "slug",
        "title",
        "accessible",
        "shareable",
        "cover",
        "event",
        "photos",
    }
    assert [p["pk"] for p in detail["photos"]] == [1, 2]
    photo = detail["photos"][1]
    assert set(photo) == {"pk", "file", "num_likes", "liked"}
    assert (photo["num_likes"], photo["liked"]) == (5, True)
    assert set(photo["file"]) == {"full", "small", "medium", "large"}
    full = urlsplit(photo["file"]["full"])
    assert f"{full.scheme}://{full.netloc}" == fake.base_url
    assert full.path == "/media/private/photos/borrel/2_0.jpg"
    assert full.query.startswith("sig=")
    assert urlsplit(photo["file"]["large"]).path == "/media/private/photos/borrel/2_0_large.webp"


def test_empty_album_has_no_cover(fake: FakeConcrexit) -> None:
    fake.add_album("empty", "Empty", [])
    assert api(fake, ALBUMS).json()["results"][0]["cover"] is None
    assert api(fake, f"{ALBUMS}empty/").json()["photos"] == []


def test_hidden_album_is_unlisted_and_404(fake: FakeConcrexit) -> None:
    fake.add_album("visible", "Visible", [])
    fake.add_album("secret", "Secret", [], hidden=True)
    page = api(fake, ALBUMS).json()
    assert page["count"] == 1
    assert [a["slug"] for a in page["results"]] == ["visible"]
    hidden = api(fake, f"{ALBUMS}secret/")
    assert hidden.status_code == 404
    assert hidden.json() == {"detail": "Not found."}
    assert api(fake, f"{ALBUMS}nope/").status_code == 404


def test_inaccessible_album_is_listed_but_403(fake: FakeConcrexit) -> None:
    fake.add_album("members-only", "Members only", [image_bytes()], accessible=False)
    listed = api(fake, ALBUMS).json()["results"]
    assert [(a["slug"], a["accessible"]) for a in listed] == [("members-only", False)]
    detail = api(fake, f"{ALBUMS}members-only/")
    assert detail.status_code == 403
    assert detail.json() == {"detail": "You do not have permission to perform this action."}


def test_events_endpoint(fake: FakeConcrexit) -> None:
    fake.add_event(
        12,
        "Spring gala",
        dt.datetime(2024, 5, 3, 20, 0, tzinfo=ZoneInfo("Europe/Amsterdam")),
    )
    fake.add_event(13, "Winter drinks", dt.datetime(2024, 1, 10, 18, 30, tzinfo=dt.UTC))
    gala = api(fake, "/api/v2/events/12/")
    assert gala.status_code == 200
    body = gala.json()
    assert (body["pk"], body["title"]) == (12, "Spring gala")
    assert body["start"] == "2024-05-03T20:00:00+02:00"
    assert body["end"] == "2024-05-03T22:00:00+02:00"
    assert api(fake, "/api/v2/events/13/").json()["start"] == "2024-01-10T19:30:00+01:00"
    missing = api(fake, "/api/v2/events/99/")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found."}
    assert get(fake.base_url + "/api/v2/events/12/").status_code == 403


def test_a_token_without_the_views_scope_is_refused(fake: FakeConcrexit) -> None:
    fake.add_event(12, "Spring gala", dt.datetime(2024, 5, 3, 20, 0))
    fake.add_album("party", "Party", [image_bytes()], event=12)
    fake.token_scopes[fake.token] = frozenset({"events:read"})

    albums = api(fake, ALBUMS)

    assert (albums.status_code, albums.json()) == (
        403,
        {"detail": "You do not have permission to perform this action."},
    )
    assert api(fake, f"{ALBUMS}party/").status_code == 403
    assert api(fake, "/api/v2/events/12/").status_code == 200
    fake.token_scopes[fake.token] = frozenset({"photos:read"})
    assert api(fake, "/api/v2/events/12/").status_code == 403
    assert api(fake, ALBUMS).status_code == 200


def test_file_variants_download_without_auth(fake: FakeConcrexit, tmp_path: Path) -> None:
    original = tmp_path / "photo.png"
    original.write_bytes(image_bytes((64, 48)))
    (pk,) = fake.add_album("a", "A", [original])
    assert fake.photo_bytes(pk) == original.read_bytes()

    full = get(fake.file_url(pk))
    assert full.status_code == 200
    assert full.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(full.content)) as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (64, 48))

    expected = {"large": (1920, 1440), "medium": (1200, 900), "small": (300, 225)}
    for variant, size in expected.items():
        resp = get(fake.file_url(pk, variant))
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "image/webp"
        with Image.open(io.BytesIO(resp.content)) as img:
            assert (img.format, img.size) == ("WEBP", size)

    again = get(fake.file_url(pk, "large"))
    assert again.content == get(fake.file_url(pk, "large")).content


def test_large_variant_downscales_big_originals(fake: FakeConcrexit) -> None:
    (pk,) = fake.add_album("a", "A", [image_bytes((1000, 2500), fmt="JPEG")])
    with Image.open(io.BytesIO(get(fake.file_url(pk, "large")).content)) as img:
        assert img.size == (768, 1920)


def test_bad_signatures_are_403(fake: FakeConcrexit) -> None:
    (pk,) = fake.add_album("a", "A", [image_bytes()])
    url = fake.file_url(pk)
    base, sig = url.split("?sig=")
    millis, mac = sig.split(".")
    tampered_mac = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert get(url).status_code == 200
    assert get(f"{base}?sig={millis}.{tampered_mac}").status_code == 403
    assert get(f"{base}?sig={int(millis) + 1000}.{mac}").status_code == 403
    assert get(base).status_code == 403
    other_variant = fake.file_url(pk, "small").split("?")[0]
    assert get(f"{other_variant}?sig={sig}").status_code == 403


def test_urls_expire_by_clock_offset(fake: FakeConcrexit) -> None:
    (pk,) = fake.add_album("a", "A", [image_bytes()])
    fake.url_max_age_s = 60
    url = fake.file_url(pk)
    fake.clock_offset_s = 59
    assert get(url).status_code == 200
    fake.clock_offset_s = 61
    assert get(url).status_code == 403
    assert get(fake.file_url(pk)).status_code == 200


def test_urls_expire_in_real_time(fake: FakeConcrexit) -> None:
    (pk,) = fake.add_album("a", "A", [image_bytes()])
    fake.url_max_age_s = 1
    url = fake.file_url(pk, "small")
    assert get(url).status_code == 200
    time.sleep(1.5)
    assert get(url).status_code == 403


def test_fail_injects_responses(fake: FakeConcrexit) -> None:
    fake.add_album("a", "A", [])
    fake.fail(ALBUMS, 503, times=2)
    assert [api(fake, ALBUMS).status_code for _ in range(3)] == [503, 503, 200]

    fake.fail(
        "/api/v2/photos/albums/a/",
        200,
        body=b"<html>login</html>",
        content_type="text/html",
    )
    html = api(fake, f"{ALBUMS}a/")
    assert (html.status_code, html.headers["Content-Type"], html.content) == (
        200,
        "text/html",
        b"<html>login</html>",
    )
    assert api(fake, f"{ALBUMS}a/").json()["slug"] == "a"


def test_fail_applies_to_files_without_touching_other_paths(
    fake: FakeConcrexit,
) -> None:
    (pk,) = fake.add_album("a", "A", [image_bytes()])
    fake.fail("/media/", 500)
    assert api(fake, ALBUMS).status_code == 200
    assert get(fake.file_url(pk)).status_code == 500
    assert get(fake.file_url(pk)).status_code == 200


def test_down_answers_503_everywhere(fake: FakeConcrexit) -> None:
    (pk,) = fake.add_album("a", "A", [image_bytes()])
    url = fake.file_url(pk)
    fake.down = True
    assert api(fake, ALBUMS).status_code == 503
    assert get(url).status_code == 503
    fake.down = False
    assert api(fake, ALBUMS).status_code == 200
    assert get(url).status_code == 200


def test_delay_makes_client_time_out(fake: FakeConcrexit) -> None:
    fake.delay_s = 0.5
    with pytest.raises(requests.Timeout):
        requests.get(fake.base_url + ALBUMS, timeout=0.1)


def test_replace_photo_changes_url_and_content(fake: FakeConcrexit) -> None:
    (pk,) = fake.add_album("a", "A", [image_bytes(color="red")])
    old_url = fake.file_url(pk)
    old_content = get(old_url).content
    new_original = image_bytes((32, 32), color="blue")

    fake.replace_photo(pk, new_original)

    new_url = fake.file_url(pk)
    assert urlsplit(old_url).path == "/media/private/photos/a/1_0.jpg"
    assert urlsplit(new_url).path == "/media/private/photos/a/1_1.jpg"
    assert fake.photo_bytes(pk) == new_original
    assert [p["pk"] for p in api(fake, f"{ALBUMS}a/").json()["photos"]] == [pk]
    assert get(old_url).status_code == 404
    new_content = get(new_url).content
    assert new_content != old_content
    with Image.open(io.BytesIO(new_content)) as img:
        assert img.size == (32, 32)


def test_remove_photo(fake: FakeConcrexit) -> None:
    first, second = fake.add_album("a", "A", [image_bytes(), image_bytes()])
    url = fake.file_url(first)
    fake.remove_photo(first)
    detail = api(fake, f"{ALBUMS}a/").json()
    assert [p["pk"] for p in detail["photos"]] == [second]
    assert detail["cover"]["pk"] == second
    assert get(url).status_code == 404


def test_add_album_rejects_non_images(fake: FakeConcrexit) -> None:
    with pytest.raises(ValueError):
        fake.add_album("a", "A", [b"not an image"])
    assert api(fake, ALBUMS).json()["count"] == 0


def test_stop_closes_the_port() -> None:
    server = FakeConcrexit().start()
    url = server.base_url + ALBUMS
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
