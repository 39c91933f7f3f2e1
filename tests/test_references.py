"""Selfie upload, the JSON API contract, the pages, and who may see what."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client, RequestFactory
from django.urls import reverse
from PIL import Image

from faces.models import Album, Match, Photo
from members.models import Member, ReferenceFace
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
    assert set(body) == {"id", "created", "warnings"}
    assert body["warnings"] == []  # a clear, large, frontal face

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
        served = client.get(item["url"])
        assert served.status_code == 200
        assert served["Content-Type"] == "image/jpeg"
        assert served["Cache-Control"] == "private, max-age=3600"
        # Consuming the stream closes the file (the test client's wrapper).
        assert b"".join(served.streaming_content) == (imported / item["source_id"]).read_bytes()


def test_a_matched_photo_whose_stored_file_is_gone_is_404(imported: Path, examples: Path) -> None:
    client, _ = logged_in("barack")
    post_selfie(client, examples / "obama.jpg")
    photo = Photo.objects.get(source_id="Party/obama2.jpg")
    default_storage.delete(photo.file.name)
    assert client.get(f"/photos/{photo.pk}/file/").status_code == 404
    assert client.get("/api/photos/").json()["count"] == 3  # still matched, only the file is gone


def test_an_admin_hidden_album_hides_its_photos_everywhere(imported: Path, examples: Path) -> None:
    client, _ = logged_in("barack")
    post_selfie(client, examples / "obama.jpg")
    gala_photo = Photo.objects.get(source_id="Gala/obama3.jpg")
    visible = client.get(f"/photos/{gala_photo.pk}/file/")
    assert visible.status_code == 200
    assert b"".join(visible.streaming_content) == (imported / "Gala" / "obama3.jpg").read_bytes()

    assert Album.objects.filter(title="Gala").update(hidden=True) == 1
    photos = client.get("/api/photos/").json()
    assert photos["count"] == 2
    assert sorted(item["source_id"] for item in photos["results"]) == [
        "Party/obama2.jpg",
        "Party/two_people.jpg",
    ]
    assert client.get(f"/photos/{gala_photo.pk}/file/").status_code == 404
    page = client.get("/").content.decode()
    assert page.count('<img src="/photos/') == 2
    assert f'<img src="/photos/{gala_photo.pk}/file/"' not in page
    assert "<h2>Gala" not in page and "<h2>Party" in page


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


def test_an_image_with_too_many_pixels_is_refused_before_decoding(media_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_MAX_IMAGE_PIXELS = 1_000_000
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 2000), "white").save(buffer, format="PNG")
    client, member = logged_in("someone")
    response = post_selfie(client, data=buffer.getvalue())
    assert response.status_code == 400
    assert response.json() == {
        "code": "too_large",
        "error": "This image has too many pixels; please upload a smaller photo.",
    }
    assert not ReferenceFace.objects.filter(member=member).exists()


def test_a_stored_selfie_is_downscaled_and_stripped_of_exif(examples: Path, media_root: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 5.0, 0.0)}  # GPSInfo: latitude 52°5′ N
    buffer = io.BytesIO()
    with Image.open(examples / "obama-1080p.jpg") as original:
        assert original.size == (1920, 1080)
        original.save(buffer, format="JPEG", quality=95, exif=exif)
    with Image.open(io.BytesIO(buffer.getvalue())) as uploaded:  # the upload really carries them
        assert uploaded.getexif()[0x010F] == "Camera"
        assert uploaded.getexif().get_ifd(0x8825)[1] == "N"

    client, member = logged_in("barack")
    response = post_selfie(client, data=buffer.getvalue())
    assert response.status_code == 201
    reference = ReferenceFace.objects.get(member=member)
    assert reference.pk == response.json()["id"]
    with default_storage.open(reference.image.name, "rb") as handle, Image.open(handle) as stored:
        assert stored.format == "JPEG"
        assert stored.size == (1024, 576)
        assert dict(stored.getexif()) == {}
        assert "exif" not in stored.info


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


def test_the_delete_button_deletes_only_the_owners_selfie(
    imported: Path, examples: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    client, member = logged_in("barack")
    reference_id = post_selfie(client, examples / "obama.jpg").json()["id"]
    image_name = ReferenceFace.objects.get(pk=reference_id).image.name
    assert Match.objects.filter(member=member).count() == 3
    url = f"/references/{reference_id}/delete/"

    intruder, _ = logged_in("mallory")
    refused = intruder.post(url, HTTP_X_CSRFTOKEN=intruder.cookies["csrftoken"].value)
    assert refused.status_code == 404
    assert ReferenceFace.objects.filter(pk=reference_id, member=member).exists()
    assert Match.objects.filter(member=member).count() == 3

    assert client.get(url).status_code == 405
    assert ReferenceFace.objects.filter(pk=reference_id).exists()

    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.post(url, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert deleted.status_code == 302
    assert deleted["Location"] == "/references/"
    assert not ReferenceFace.objects.filter(pk=reference_id).exists()
    assert not Match.objects.filter(member=member).exists()
    assert not default_storage.exists(image_name)
    assert "Selfie deleted, with its matches." in client.get("/references/").content.decode()
    assert client.get("/api/photos/").json()["count"] == 0


SIGNUP = {"username": "newcomer", "password1": "plum kettle orbit 93", "password2": "plum kettle orbit 93"}


def test_sign_up_is_closed_by_default(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.THROWBACK_ALLOW_SIGNUP is False  # the default; the test environment does not set it
    client = Client()
    assert client.get("/accounts/signup/").status_code == 404
    assert client.post("/accounts/signup/", SIGNUP).status_code == 404
    assert not Member.objects.filter(username="newcomer").exists()
    login_page = client.get("/accounts/login/").content.decode()
    assert "Create one" not in login_page and "/accounts/signup/" not in login_page


def test_sign_up_when_enabled_creates_a_member_logs_in_and_asks_consent(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_ALLOW_SIGNUP = True
    client = Client()
    assert '<a href="/accounts/signup/">Create one</a>' in client.get("/accounts/login/").content.decode()
    assert client.get("/accounts/signup/").status_code == 200

    response = client.post("/accounts/signup/", SIGNUP)
    assert response.status_code == 302
    assert response["Location"] == "/consent/"
    member = Member.objects.get(username="newcomer")
    assert member.consent_given_at is None
    assert member.check_password("plum kettle orbit 93")
    assert client.session["_auth_user_id"] == str(member.pk)
    assert client.get("/consent/").status_code == 200  # logged in: no redirect to the login page
    assert client.get("/references/")["Location"] == "/consent/"


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
    for page in (
        "/references/",
        "/consent/",
        "/photos/1/",
        "/photos/1/file/",
        "/photos/1/download/",
        "/albums/1/download/",
        "/years/",
        "/years/2019/",
        "/references/1/face.jpg",
        "/privacy/delete/",
    ):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"] == f"/accounts/login/?next={page}"
    assert client.post("/photos/1/not-me/")["Location"] == "/accounts/login/?next=/photos/1/not-me/"
    assert client.post("/api/photos/1/not-me/").status_code == 403
    # Visitors get the landing page at /, which explains and links to the login.
    landing = client.get("/")
    assert landing.status_code == 200
    assert [t.name for t in landing.templates][:1] == ["faces/landing.html"]
    assert '<a class="button" href="/accounts/login/">Log in</a>' in landing.content.decode()


def test_the_upload_page_asks_consent_then_shows_photos(imported: Path, examples: Path) -> None:
    member = MemberFactory(username="barack", consent_given_at=None)
    client = Client()
    client.force_login(member)
    assert client.get("/references/")["Location"] == "/consent/"
    assert client.post("/consent/", {}).status_code == 200  # box not ticked: asked again
    member.refresh_from_db()
    assert member.consent_given_at is None
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
    # Distances to obama.jpg: obama3 ≈ 0.327, two_people ≈ 0.333, obama2 ≈ 0.351.
    assert matched_source_ids(member) == ["Gala/obama3.jpg", "Party/obama2.jpg", "Party/two_people.jpg"]

    settings.THROWBACK_MATCH_THRESHOLD = 0.34
    call_command("rematch", stdout=io.StringIO())
    assert matched_source_ids(member) == ["Gala/obama3.jpg", "Party/two_people.jpg"]
    assert client.get("/api/photos/").json()["count"] == 2

    settings.THROWBACK_MATCH_THRESHOLD = 0.49
    call_command("rematch", stdout=io.StringIO())
    call_command("rematch", stdout=io.StringIO())  # idempotent: no duplicates
    assert matched_source_ids(member) == ["Gala/obama3.jpg", "Party/obama2.jpg", "Party/two_people.jpg"]
    assert Match.objects.filter(member=member).count() == 3


def matched_source_ids(member: object) -> list[str]:
    return sorted(Match.objects.filter(member=member).values_list("face__photo__source_id", flat=True))
