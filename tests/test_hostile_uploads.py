"""Hostile selfie uploads, through the API and the web form.

Each file either becomes a selfie (odd formats of a real face photo) or is
refused with a code and the member's message: never a 500, and the member's
selfie and matches from before, and their stored image, are still there.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image

from faces.models import Match
from members.models import Member, ReferenceFace
from tests import hostile
from tests.factories import member_with_stored_selfie

pytestmark = pytest.mark.django_db

NOT_IMAGE = "This file is not an image we can read. Please upload a JPEG or PNG photo."
TOO_MANY_PIXELS = "This image has too many pixels; please upload a smaller photo."
NO_FACE = "We could not find a face in this photo. Use a well-lit photo of your face, looking at the camera."

# name, maker, file name sent, (code, message) for refusals
REFUSED: list[tuple[str, Callable[[bytes], bytes], str, str, str]] = [
    ("text with an image name", hostile.text, "selfie.jpg", "not_image", NOT_IMAGE),
    ("zero bytes", hostile.zero_bytes, "selfie.jpg", "not_image", NOT_IMAGE),
    ("JPEG header only", hostile.jpeg_header_only, "selfie.jpg", "not_image", NOT_IMAGE),
    ("truncated JPEG", hostile.truncated_jpeg, "selfie.jpg", "not_image", NOT_IMAGE),
    ("truncated PNG", hostile.truncated_png, "selfie.png", "not_image", NOT_IMAGE),
    ("PNG decompression bomb", hostile.png_bomb, "selfie.png", "too_large", TOO_MANY_PIXELS),
    ("GIF decompression bomb", hostile.gif_bomb, "selfie.gif", "too_large", TOO_MANY_PIXELS),
    ("JPEG decompression bomb", hostile.jpeg_bomb, "selfie.jpg", "too_large", TOO_MANY_PIXELS),
    ("HEIC", hostile.heic, "selfie.heic", "not_image", NOT_IMAGE),
    ("SVG with a script", hostile.svg_with_script, "selfie.svg", "not_image", NOT_IMAGE),
    ("SVG with a script named .jpg", hostile.svg_with_script, "selfie.jpg", "not_image", NOT_IMAGE),
    ("HTML page", hostile.html_page, "selfie.jpg", "not_image", NOT_IMAGE),
    ("PDF", hostile.pdf, "selfie.pdf", "not_image", NOT_IMAGE),
    ("10x10 image", hostile.tiny_10x10, "selfie.png", "no_face", NO_FACE),
]

# name, maker: odd but honest images of one face, which must be accepted.
ACCEPTED: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("CMYK JPEG", hostile.cmyk_jpeg),
    ("16-bit greyscale PNG", hostile.grey_16bit_png),
    ("palette PNG", hostile.palette_png),
    ("RGBA PNG", hostile.alpha_png),
    ("greyscale+alpha PNG", hostile.grey_alpha_png),
    ("animated GIF", hostile.animated_gif),
    ("WebP", hostile.webp),
    ("BMP", hostile.bmp),
    ("TIFF", hostile.tiff),
    ("progressive JPEG", hostile.progressive_jpeg),
]

# File names that must not matter: the selfie is stored under a random name.
NAMES = [
    "../../../etc/passwd.jpg",
    "..\\..\\windows\\win.ini.jpg",
    "/absolute/path/selfie.jpg",
    "Ĳsselmeer – zelfie 😀.jpg",
    "selfie\u202egpj.exe",
    "x" * 300 + ".jpg",
    "",
]
NAME_IDS = [
    "traversal",
    "windows traversal",
    "absolute path",
    "unicode",
    "right-to-left override",
    "304 characters",
    "empty",
]


@pytest.fixture
def face(examples: Path) -> bytes:
    """A real photo with one face, 853×480."""
    return (examples / "obama-480p.jpg").read_bytes()


@pytest.fixture
def member(media_root: Path) -> Member:
    """A member with one stored selfie, matched in one stored photo."""
    return member_with_stored_selfie()


def stored_state(member: Member) -> tuple[list[tuple[int, str]], list[tuple[int, int]], list[str]]:
    """The member's selfies, their matches (reference, face) and every file in media storage."""
    references = list(
        ReferenceFace.objects.selfies().filter(member=member).order_by("id").values_list("id", "image")
    )
    # A photo's matches are recomputed as a whole (one face, one person), so rows, not ids, are compared.
    matches = sorted(Match.objects.filter(member=member).values_list("reference_id", "face_id"))
    files = sorted(str(p) for p in Path(default_storage.location).rglob("*") if p.is_file())
    return references, matches, files


def api_client(member: Member) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    client.get("/references/")
    return client


def api_upload(client: Client, data: bytes, name: str = "selfie.jpg"):  # type: ignore[no-untyped-def]
    upload = io.BytesIO(data)
    upload.name = name
    return client.post(
        "/api/references/", {"image": upload}, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )


def form_upload(member: Member, data: bytes, name: str = "selfie.jpg"):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(member)
    upload = io.BytesIO(data)
    upload.name = name
    return client.post("/references/", {"image": upload})


def alerts(html: str) -> list[str]:
    return re.findall(r'<p class="error" role="alert">([^<]*)</p>', html)


@pytest.mark.parametrize(("case", "maker", "name", "code", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_hostile_upload_to_the_api_is_refused_and_loses_nothing(
    member: Member, face: bytes, case: str, maker, name: str, code: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    before = stored_state(member)
    response = api_upload(api_client(member), maker(face), name)
    assert response.status_code == 400
    assert response.json() == {"error": message, "code": code}
    assert stored_state(member) == before


@pytest.mark.parametrize(("case", "maker", "name", "code", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_hostile_upload_on_the_page_is_refused_with_its_message(
    member: Member, face: bytes, case: str, maker, name: str, code: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    before = stored_state(member)
    response = form_upload(member, maker(face), name)
    assert response.status_code == 200
    # The form itself catches an empty file, with Django's own words.
    expected = "The submitted file is empty." if case == "zero bytes" else message
    assert alerts(response.content.decode()) == [expected]
    assert stored_state(member) == before


def test_an_upload_over_the_size_limit_is_refused_on_both_paths(
    member: Member, face: bytes, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_UPLOAD_MAX_MB = 1
    big = hostile.bmp(face) + b"\x00" * (1024 * 1024)  # a real image, padded past 1 MB
    before = stored_state(member)
    response = api_upload(api_client(member), big, "selfie.bmp")
    assert response.status_code == 400
    assert response.json() == {"error": "This file is too large; the limit is 1 MB.", "code": "too_large"}
    page = form_upload(member, big, "selfie.bmp")
    assert alerts(page.content.decode()) == ["This file is too large; the limit is 1 MB."]
    assert stored_state(member) == before


def test_the_field_sent_as_text_instead_of_a_file_is_refused(member: Member) -> None:
    client = api_client(member)
    before = stored_state(member)
    response = client.post(
        "/api/references/", {"image": "not a file"}, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Choose a photo to upload.", "code": "not_image"}
    assert stored_state(member) == before


def test_a_body_that_is_not_multipart_is_refused(member: Member) -> None:
    client = api_client(member)
    before = stored_state(member)
    response = client.post(
        "/api/references/",
        b"\xff\xd8\xff not multipart",
        content_type="image/jpeg",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "not_image"
    assert stored_state(member) == before


def test_a_broken_multipart_body_is_refused(member: Member) -> None:
    client = api_client(member)
    before = stored_state(member)
    response = client.post(
        "/api/references/",
        b'--boundary\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8',
        content_type="multipart/form-data; boundary=boundary",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "not_image"
    assert stored_state(member) == before


def _new_reference(member: Member, before: list[tuple[int, str]]) -> ReferenceFace:
    known = {pk for pk, _ in before}
    (reference,) = ReferenceFace.objects.selfies().filter(member=member).exclude(pk__in=known)
    return reference


def _stored_size(reference: ReferenceFace) -> tuple[int, int]:
    with default_storage.open(reference.image.name, "rb") as handle, Image.open(handle) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        return image.size


@pytest.mark.parametrize(("case", "maker"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_an_unusual_but_honest_image_is_accepted(member: Member, face: bytes, case: str, maker) -> None:  # type: ignore[no-untyped-def]
    before_refs, before_matches, _ = stored_state(member)
    response = api_upload(api_client(member), maker(face))
    assert response.status_code == 201, response.content
    reference = _new_reference(member, before_refs)
    assert response.json()["id"] == reference.pk
    assert _stored_size(reference) == (853, 480)
    refs, matches, _ = stored_state(member)
    assert refs[:1] == before_refs and set(before_matches) <= set(matches)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_turned_upright(member: Member, face: bytes, orientation: int) -> None:
    """Stored sideways or mirrored with the tag saying so: found, stored upright (853×480)."""
    before_refs = stored_state(member)[0]
    data = hostile.with_orientation(face, orientation)
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.size == ((853, 480) if orientation < 5 else (480, 853))
    response = api_upload(api_client(member), data)
    assert response.status_code == 201, response.content
    reference = _new_reference(member, before_refs)
    assert _stored_size(reference) == (853, 480)
    # The face box lies in the upright image: the face is in its left half.
    assert reference.right < 853 * 0.75 and reference.bottom < 480


@pytest.mark.parametrize("name", NAMES, ids=NAME_IDS)
def test_the_uploaded_file_name_never_reaches_storage(member: Member, face: bytes, name: str) -> None:
    before_refs = stored_state(member)[0]
    response = api_upload(api_client(member), face, name)
    assert response.status_code == 201, response.content
    reference = _new_reference(member, before_refs)
    assert re.fullmatch(r"references/[0-9a-f]{32}\.jpg", reference.image.name)
    assert Path(default_storage.path(reference.image.name)).is_file()
    media = Path(default_storage.location)
    assert all(p.resolve().is_relative_to(media.resolve()) for p in media.rglob("*"))


def test_an_accepted_odd_image_is_also_accepted_by_the_page(member: Member, face: bytes) -> None:
    response = form_upload(member, hostile.cmyk_jpeg(face), "Ĳsselmeer.jpg")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert ReferenceFace.objects.selfies().filter(member=member).count() == 2
