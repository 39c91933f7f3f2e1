"""Selfie upload, the JSON API contract, the pages, and who may see what."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client, RequestFactory
from django.urls import reverse
from PIL import Image

from faces.models import Match, Photo
from members.models import ReferenceFace
from members.services import UploadTooLarge
from members.uploads import MULTIPART_OVERHEAD_BYTES, read_upload
from tests.conftest import make_album_folder
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path: Path, examples: Path, media_root: Path) -> Path:
    """Two albums imported from a folder of real photos."""
    from django.core.management import call_command

    root = make_album_folder(
        tmp_path / "photos",
        {
            "Party": [examples / n for n in ("obama2.jpg", "biden.jpg", "two_people.jpg")],
            "Gala": [examples / n for n in ("obama3.jpg", "kit_with_rose.jpg")],
        },
    )
    call_command("import_albums", folder=str(root), workers=1, no_progress=True, stdout=io.StringIO())
    return root


def logged_in(username: str, *, consent: bool = True) -> tuple[Client, object]:
    member = MemberFactory(username=username, **({} if consent else {"consent_given_at": None}))
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    client.get(reverse("members:photos"))  # sets the CSRF cookie
    return client, member


def post_selfie(client: Client, path: Path | None = None, *, data: bytes | None = None, **extra: str):  # type: ignore[no-untyped-def]
    content = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
    upload = io.BytesIO(content)
    upload.name = path.name if path else "selfie.jpg"
    return client.post(
        "/api/references/",
        {"image": upload, **extra},
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def test_upload_returns_201_and_photos_api_lists_the_matches(imported: Path, examples: Path) -> None:
    client, _ = logged_in("barack")
    response = post_selfie(client, examples / "obama.jpg")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "created"}

    photos = client.get("/api/photos/").json()
    assert photos["count"] == 3
    assert photos["next"] is None and photos["previous"] is None
    assert sorted(item["source_id"] for item in photos["results"]) == [
        "Gala/obama3.jpg",
        "Party/obama2.jpg",
        "Party/two_people.jpg",
    ]
    for item in photos["results"]:
        assert set(item) == {"id", "source_id", "url", "album"}
        assert set(item["album"]) == {"id", "title", "date"}
        assert item["url"] == f"http://testserver/photos/{item['id']}/file/"
        assert client.get(item["url"]).status_code == 200


def test_photos_api_orders_newest_album_first_and_paginates(imported: Path, examples: Path, settings) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from faces.models import Album

    Album.objects.filter(title="Gala").update(date=dt.date(2024, 5, 1))
    Album.objects.filter(title="Party").update(date=dt.date(2023, 1, 1))
    settings.THROWBACK_PHOTOS_PER_PAGE = 2
    client, _ = logged_in("barack")
    post_selfie(client, examples / "obama.jpg")

    first = client.get("/api/photos/").json()
    assert [item["album"]["title"] for item in first["results"]] == ["Gala", "Party"]
    assert first["results"][0]["album"]["date"] == "2024-05-01"
    assert first["next"] == "http://testserver/api/photos/?page=2"
    second = client.get(first["next"]).json()
    assert [item["album"]["title"] for item in second["results"]] == ["Party"]
    assert second["previous"] == "http://testserver/api/photos/?page=1"


@pytest.mark.parametrize(
    ("filename", "code", "message"),
    [
        ("two_people.jpg", "many_faces", "shows 2 faces"),
        (None, "no_face", "could not find a face"),
        ("text", "not_image", "not an image"),
    ],
)
def test_a_bad_selfie_is_refused_with_a_code(
    examples: Path, media_root: Path, filename, code, message
) -> None:  # type: ignore[no-untyped-def]
    client, member = logged_in("someone")
    if filename is None:
        buffer = io.BytesIO()
        Image.new("RGB", (400, 300), "white").save(buffer, format="JPEG")
        response = post_selfie(client, data=buffer.getvalue())
    elif filename == "text":
        response = post_selfie(client, data=b"hello, I am a text file")
    else:
        response = post_selfie(client, examples / filename)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert message in response.json()["error"]
    assert not ReferenceFace.objects.filter(member=member).exists()


def test_a_too_large_upload_is_refused(examples: Path, media_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_UPLOAD_MAX_MB = 1
    client, _ = logged_in("someone")
    response = post_selfie(client, data=b"\xff\xd8" + b"0" * (2 * 1024 * 1024))
    assert response.status_code == 400
    assert response.json()["code"] == "too_large"


class RecordingUploadHandler(FileUploadHandler):
    """A spy in FILE_UPLOAD_HANDLERS: counts the bytes handed on to Django's
    memory and temporary-file handlers, on request.bytes_handed_on."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.request.bytes_handed_on = getattr(self.request, "bytes_handed_on", 0) + len(raw_data)  # type: ignore[union-attr]
        return raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        return None


def test_an_oversized_upload_is_never_spooled_past_the_limit(media_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_UPLOAD_MAX_MB = 1
    handlers = list(settings.FILE_UPLOAD_HANDLERS)
    spy_at = handlers.index("django.core.files.uploadhandler.MemoryFileUploadHandler")
    settings.FILE_UPLOAD_HANDLERS = [
        *handlers[:spy_at],
        "tests.test_references.RecordingUploadHandler",
        *handlers[spy_at:],
    ]
    client, member = logged_in("someone")
    # The CSRF check parses the body before the view looks at Content-Length.
    response = post_selfie(client, data=b"\xff\xd8" + b"0" * (3 * 1024 * 1024))
    assert response.status_code == 400
    assert response.json() == {"error": "This file is too large; the limit is 1 MB.", "code": "too_large"}
    assert 0 < response.wsgi_request.bytes_handed_on <= 1024 * 1024
    assert response.wsgi_request.upload_limit_exceeded is True
    assert not ReferenceFace.objects.filter(member=member).exists()


def test_a_file_past_the_limit_is_dropped_and_refused_as_too_large(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_UPLOAD_MAX_MB = 1
    big = SimpleUploadedFile("big.jpg", b"\xff\xd8" + b"0" * (1024 * 1024 + 10 * 1024))
    request = RequestFactory().post("/api/references/", {"image": big, "consent": "yes"})
    # Passes the Content-Length check: only the upload handler can catch it.
    assert int(request.META["CONTENT_LENGTH"]) <= 1024 * 1024 + MULTIPART_OVERHEAD_BYTES
    with pytest.raises(UploadTooLarge, match=r"^This file is too large; the limit is 1 MB\.$"):
        read_upload(request, "image")
    assert "image" not in request.FILES
    assert request.POST["consent"] == "yes"  # the fields after the file are still read
    assert request.upload_limit_exceeded is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        ({}, "Choose a photo to upload.", "not_image"),
        (
            {"image": SimpleUploadedFile("big.jpg", b"0" * (2 * 1024 * 1024))},
            "This file is too large; the limit is 1 MB.",
            "too_large",
        ),
    ],
)
def test_consent_given_with_a_refused_upload_stays_recorded(
    media_root: Path, settings, data, error, code
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_UPLOAD_MAX_MB = 1
    client, member = logged_in("newbie", consent=False)
    response = client.post(
        "/api/references/", {**data, "consent": "yes"}, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )
    assert response.status_code == 400
    assert response.json() == {"error": error, "code": code}
    member.refresh_from_db()
    assert member.consent_given_at is not None


def test_consent_is_required_and_can_be_given_with_the_upload(examples: Path, media_root: Path) -> None:
    client, member = logged_in("newbie", consent=False)
    refused = post_selfie(client, examples / "obama.jpg")
    assert refused.status_code == 400 and refused.json()["code"] == "consent"

    accepted = post_selfie(client, examples / "obama.jpg", consent="yes")
    assert accepted.status_code == 201
    member.refresh_from_db()
    assert member.consent_given_at is not None


def test_the_reference_limit_is_enforced(examples: Path, media_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_MAX_REFERENCES = 2
    client, _ = logged_in("collector")
    assert post_selfie(client, examples / "obama.jpg").status_code == 201
    assert post_selfie(client, examples / "obama2.jpg").status_code == 201
    third = post_selfie(client, examples / "obama3.jpg")
    assert third.status_code == 400 and third.json()["code"] == "limit"


def test_list_and_delete_own_references_only(
    imported: Path, examples: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    client, member = logged_in("barack")
    reference_id = post_selfie(client, examples / "obama.jpg").json()["id"]
    assert [r["id"] for r in client.get("/api/references/").json()] == [reference_id]
    image_name = ReferenceFace.objects.get(pk=reference_id).image.name

    intruder, _ = logged_in("mallory")
    token = intruder.cookies["csrftoken"].value
    assert intruder.get("/api/references/").json() == []
    assert intruder.delete(f"/api/references/{reference_id}/", HTTP_X_CSRFTOKEN=token).status_code == 404
    assert intruder.get("/api/photos/").json()["count"] == 0
    for photo in Photo.objects.all():
        assert intruder.get(f"/photos/{photo.pk}/file/").status_code == 404

    token = client.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.delete(f"/api/references/{reference_id}/", HTTP_X_CSRFTOKEN=token)
    assert deleted.status_code == 204
    assert not Match.objects.filter(member=member).exists()
    assert client.get("/api/photos/").json()["count"] == 0
    from django.core.files.storage import default_storage

    assert not default_storage.exists(image_name)


def test_state_changes_need_the_csrf_token(examples: Path, media_root: Path) -> None:
    client, _ = logged_in("barack")
    with (examples / "obama.jpg").open("rb") as handle:
        response = client.post("/api/references/", {"image": handle})
    assert response.status_code == 403
    assert not ReferenceFace.objects.exists()


def test_anonymous_requests_are_refused() -> None:
    client = Client()
    assert client.get("/api/photos/").status_code == 403
    assert client.get("/api/references/").status_code == 403
    assert client.delete("/api/references/1/").status_code == 403
    for page in ("/", "/references/", "/consent/", "/photos/1/file/"):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_the_upload_page_asks_consent_then_shows_photos(imported: Path, examples: Path) -> None:
    member = MemberFactory(username="barack", consent_given_at=None)
    client = Client()
    client.force_login(member)
    assert client.get("/references/")["Location"] == "/consent/"
    assert client.post("/consent/", {}).status_code == 200  # box not ticked: asked again
    assert client.post("/consent/", {"agree": "on"})["Location"] == "/references/"

    with (examples / "obama.jpg").open("rb") as handle:
        response = client.post("/references/", {"image": handle})
    assert response["Location"] == "/"
    page = client.get("/").content.decode()
    assert page.count('<img src="/photos/') == 3
    assert "Party" in page and "Gala" in page


def test_the_upload_page_shows_why_a_selfie_was_refused(examples: Path, media_root: Path) -> None:
    member = MemberFactory(username="barack")
    client = Client()
    client.force_login(member)
    with (examples / "two_people.jpg").open("rb") as handle:
        page = client.post("/references/", {"image": handle}).content.decode()
    assert "This photo shows 2 faces. Use a photo with only you in it." in page


def test_the_upload_page_asks_for_a_file_when_none_is_chosen(media_root: Path) -> None:
    client = Client()
    client.force_login(MemberFactory(username="barack"))
    response = client.post("/references/", {})
    assert response.status_code == 200
    alerts = [line.strip() for line in response.content.decode().splitlines() if 'role="alert"' in line]
    assert alerts == ['<p class="error" role="alert">This field is required.</p>']


def test_the_upload_page_refuses_a_file_over_the_limit_with_the_size_only(media_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_UPLOAD_MAX_MB = 1
    client = Client()
    client.force_login(MemberFactory(username="barack"))
    big = SimpleUploadedFile("big.jpg", b"\xff\xd8" + b"0" * (2 * 1024 * 1024))
    response = client.post("/references/", {"image": big})
    assert response.status_code == 200
    alerts = [line.strip() for line in response.content.decode().splitlines() if 'role="alert"' in line]
    assert alerts == ['<p class="error" role="alert">This file is too large; the limit is 1 MB.</p>']
    assert not ReferenceFace.objects.exists()


def test_rematch_recomputes_matches_for_a_new_threshold(imported: Path, examples: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    client, member = logged_in("barack")
    post_selfie(client, examples / "obama.jpg")
    assert Match.objects.filter(member=member).count() == 3

    settings.THROWBACK_MATCH_THRESHOLD = 0.2
    call_command("rematch", stdout=io.StringIO())
    strict = set(Match.objects.values_list("face_id", flat=True))
    assert len(strict) < 3
    settings.THROWBACK_MATCH_THRESHOLD = 0.49
    call_command("rematch", stdout=io.StringIO())
    call_command("rematch", stdout=io.StringIO())
    assert Match.objects.filter(member=member).count() == 3
