"""Selfies that work (issue 14): a warning for a small, dark or blurred face; a dominant face among
several is used; a face too small for the default detector is found by trying harder."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image, ImageEnhance, ImageFilter

from faces import engine
from members.models import ReferenceFace
from members.selfie_quality import MESSAGES, face_measures
from tests.test_references import logged_in, post_selfie

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def jpeg_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture
def obama(examples: Path) -> Image.Image:
    return Image.open(examples / "obama.jpg").convert("RGB")


@pytest.mark.parametrize(
    ("change", "codes"),
    [
        (lambda image: image, []),
        (lambda image: ImageEnhance.Brightness(image).enhance(0.3), ["dark"]),
        (lambda image: image.filter(ImageFilter.GaussianBlur(8)), ["blurred"]),
        (lambda image: image.resize((image.width // 8, image.height // 8)), ["small"]),
    ],
    ids=["clean", "dark", "blurred", "small"],
)
def test_a_small_dark_or_blurred_selfie_is_kept_with_a_clear_warning(
    media_root: Path, obama: Image.Image, change, codes: list[str]
) -> None:  # type: ignore[no-untyped-def]
    client, member = logged_in("barack")
    response = post_selfie(client, data=jpeg_of(change(obama)))
    assert response.status_code == 201
    assert response.json()["warnings"] == [MESSAGES[code] for code in codes]
    reference = ReferenceFace.objects.get(member=member)
    assert reference.warnings == codes
    page = client.get(reverse("members:references")).content.decode()
    for code in codes:
        assert MESSAGES[code] in page
    assert "Three selfies find far more than one." in page


def test_a_turned_face_is_kept_with_a_warning(media_root: Path, faces_dir: Path) -> None:
    client, member = logged_in("ben")
    # A web photo of Ben Affleck looking past the camera (face_turn 0.84).
    response = post_selfie(client, faces_dir / "five_celebrity_faces" / "train" / "Ben_Affleck" / "5.jpg")
    assert response.status_code == 201
    assert response.json()["warnings"] == [MESSAGES["turned"]]
    assert ReferenceFace.objects.get(member=member).warnings == ["turned"]


def test_face_turn_is_where_the_nose_lies_between_the_ends_of_the_jaw() -> None:
    jaw = [(100, 50), *[(150, 100)] * 15, (200, 50)]

    def marks(nose_x: int) -> dict[str, list[tuple[int, int]]]:
        return {"chin": jaw, "nose_bridge": [(nose_x, 40), (nose_x, 60)]}

    assert engine.face_turn(marks(150)) == 0.0
    assert engine.face_turn(marks(125)) == 0.5
    assert engine.face_turn(marks(190)) == pytest.approx(0.8)
    assert engine.face_turn(marks(100)) == 1.0


def test_the_form_upload_of_a_dark_selfie_stays_on_the_selfie_page_with_the_warning(
    media_root: Path, obama: Image.Image
) -> None:
    member_client, _ = logged_in("barack")
    upload = io.BytesIO(jpeg_of(ImageEnhance.Brightness(obama).enhance(0.3)))
    upload.name = "dark.jpg"
    response = member_client.post(
        reverse("members:references"),
        {"image": upload},
        HTTP_X_CSRFTOKEN=member_client.cookies["csrftoken"].value,
        follow=True,
    )
    assert response.redirect_chain == [(reverse("members:references"), 302)]
    assert f"Selfie added, with a warning: {MESSAGES['dark']}" in response.content.decode()


def test_of_several_faces_a_clearly_dominant_one_is_used(
    media_root: Path, obama: Image.Image, examples: Path
) -> None:
    biden = Image.open(examples / "biden.jpg").convert("RGB")
    canvas = Image.new("RGB", (1400, 1200), "white")
    canvas.paste(obama.resize((640, 800)), (380, 200))
    canvas.paste(biden.resize((biden.width * 350 // biden.height, 350)), (10, 10))  # small, in a corner
    client, member = logged_in("barack")
    assert post_selfie(client, data=jpeg_of(canvas)).status_code == 201
    reference = ReferenceFace.objects.get(member=member)
    # The box of Obama's face (the crop shows it), not Biden's in the corner.
    assert reference.left > 380 and reference.top > 200
    alone, _ = logged_in("alone")
    assert post_selfie(alone, examples / "obama.jpg").status_code == 201
    other = ReferenceFace.objects.get(member__username="alone")
    assert float(np.linalg.norm(reference.encoding - other.encoding)) < 0.3


def test_two_faces_of_the_same_size_are_still_refused(media_root: Path, examples: Path) -> None:
    client, _ = logged_in("barack")
    response = post_selfie(client, examples / "two_people.jpg")
    assert response.status_code == 400 and response.json()["code"] == "many_faces"


def test_a_face_too_small_for_the_default_detector_is_found_by_trying_harder(
    media_root: Path, obama: Image.Image, settings
) -> None:  # type: ignore[no-untyped-def]
    tiny = obama.resize((obama.width // 10, obama.height // 10))
    options = engine.EngineOptions(
        max_side_px=settings.THROWBACK_ENCODE_MAX_SIDE,
        upsample=settings.THROWBACK_DETECT_UPSAMPLE,
        landmarks=settings.THROWBACK_LANDMARKS,
    )
    assert engine.find_faces(tiny, options) == []  # the default detection finds nothing
    client, member = logged_in("barack")
    response = post_selfie(client, data=jpeg_of(tiny))
    assert response.status_code == 201
    assert ReferenceFace.objects.get(member=member).warnings == ["small"]


def test_face_measures_read_the_box_only(obama: Image.Image) -> None:
    black = Image.new("RGB", (200, 200), "black")
    black.paste(Image.new("RGB", (100, 100), "white"), (50, 50))
    measures = face_measures(black, (50, 150, 150, 50))
    assert measures == {"side_px": 100.0, "brightness": 255.0, "sharpness": 0.0}
