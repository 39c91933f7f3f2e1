"""faces.engine on real photos: detection, encoding, and bad images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faces import engine


def test_two_people_photo_gives_two_faces_with_float32_encodings(examples: Path) -> None:
    analysis = engine.analyse((examples / "two_people.jpg").read_bytes())
    assert len(analysis.faces) == 2
    assert (analysis.width, analysis.height) == (1126, 661)
    for face in analysis.faces:
        assert face.encoding.shape == (128,)
        assert face.encoding.dtype == np.float32
        assert 0 <= face.left < face.right <= analysis.width
        assert 0 <= face.top < face.bottom <= analysis.height


def test_same_person_is_closer_than_different_people(examples: Path) -> None:
    def encoding(name: str) -> np.ndarray:
        (face,) = engine.analyse((examples / name).read_bytes()).faces
        return face.encoding

    obama, obama2, biden = encoding("obama.jpg"), encoding("obama2.jpg"), encoding("biden.jpg")
    assert np.linalg.norm(obama - obama2) < 0.49 < np.linalg.norm(obama - biden)


def test_boxes_are_in_original_pixels_after_downscaling(examples: Path) -> None:
    data = (examples / "obama-1080p.jpg").read_bytes()
    small = engine.analyse(data, engine.EngineOptions(max_side_px=500))
    large = engine.analyse(data, engine.EngineOptions(max_side_px=1000))
    (a,), (b,) = small.faces, large.faces
    # the same face, centred at the same place in the 1920×1080 original,
    # well beyond the 500 px thumbnail's own coordinates
    centre_a = ((a.left + a.right) / 2, (a.top + a.bottom) / 2)
    centre_b = ((b.left + b.right) / 2, (b.top + b.bottom) / 2)
    assert abs(centre_a[0] - centre_b[0]) < 30 and abs(centre_a[1] - centre_b[1]) < 30
    assert centre_a[0] > 900


def test_exif_orientation_is_applied_before_detection(examples: Path) -> None:
    upright = Image.open(examples / "obama.jpg")
    rotated = upright.rotate(90, expand=True)  # stored sideways (90° anticlockwise)...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with EXIF saying "rotate 90° clockwise to view"
    buffer = io.BytesIO()
    rotated.save(buffer, format="JPEG", exif=exif)
    analysis = engine.analyse(buffer.getvalue())
    assert (analysis.width, analysis.height) == upright.size
    assert len(analysis.faces) == 1


def test_bytes_that_are_not_an_image_are_refused() -> None:
    with pytest.raises(engine.NotAnImage, match="not a readable image"):
        engine.analyse(b"<html>not a photo</html>")


def test_truncated_jpeg_is_refused(examples: Path) -> None:
    data = (examples / "obama.jpg").read_bytes()
    with pytest.raises(engine.NotAnImage):
        engine.analyse(data[: len(data) // 3])


def test_decompression_bomb_is_refused_before_decoding() -> None:
    buffer = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 1_000_000
    with pytest.raises(engine.ImageTooLarge, match="more than the limit"):
        engine.analyse(buffer.getvalue(), engine.EngineOptions(max_pixels=50_000_000))


def test_photo_without_a_face_gives_no_faces() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "skyblue").save(buffer, format="PNG")
    assert engine.analyse(buffer.getvalue()).faces == []


# --- decode-time reduction (issue 17, item 4) -------------------------------------------


def test_a_huge_image_is_reduced_while_it_is_decoded() -> None:
    """A 6 KB-class 1-bit PNG of 7000 × 7000 px comes out at 1167 px, not 49 million pixels."""
    buffer = io.BytesIO()
    Image.new("1", (7000, 7000), 1).save(buffer, format="PNG")

    image = engine.load_image(buffer.getvalue(), max_pixels=50_000_000, max_side_px=1024)

    assert (image.size, image.mode) == ((1167, 1167), "RGB")
    assert engine.load_image(buffer.getvalue(), max_pixels=50_000_000).size == (7000, 7000)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(examples: Path) -> None:
    data = (examples / "obama-1080p.jpg").read_bytes()

    assert engine.load_image(data, max_pixels=50_000_000, max_side_px=500).size == (960, 540)
    assert engine.load_image(data, max_pixels=50_000_000, max_side_px=1000).size == (1920, 1080)


@pytest.mark.parametrize("format", ["PNG", "JPEG"])
def test_a_reduced_image_is_still_turned_upright(format: str) -> None:
    """The EXIF orientation survives the reduction: a landscape file marked "rotate 90°" comes out portrait."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 1000), "white").save(buffer, format=format, exif=exif.tobytes())

    image = engine.load_image(buffer.getvalue(), max_pixels=50_000_000, max_side_px=500)

    assert image.height > image.width
    assert max(image.size) in range(500, 1001)
