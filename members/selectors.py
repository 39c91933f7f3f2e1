"""Reads for member pages: the face crop of a selfie."""

from __future__ import annotations

import io

from django.core.files.storage import default_storage
from PIL import Image

from members.models import ReferenceFace

FACE_CROP_SIDE_PX = 256
# Room around the detected box, as a share of the box's size on each side.
FACE_CROP_MARGIN = 0.35


def reference_face_crop(reference: ReferenceFace) -> bytes:
    """A square JPEG of the face detected in a stored selfie, at most FACE_CROP_SIDE_PX.

    Made from the stored (upright, EXIF-free) image and the face's box, with
    some margin, clamped to the image. Raises FileNotFoundError when the
    image is gone from storage.
    """
    with default_storage.open(reference.image.name, "rb") as handle, Image.open(handle) as image:
        image.load()
        width, height = image.size
        box_w, box_h = reference.right - reference.left, reference.bottom - reference.top
        side = max(box_w, box_h) * (1 + 2 * FACE_CROP_MARGIN)
        centre_x, centre_y = (reference.left + reference.right) / 2, (reference.top + reference.bottom) / 2
        side = min(side, width, height)
        left = min(max(centre_x - side / 2, 0), width - side)
        top = min(max(centre_y - side / 2, 0), height - side)
        crop = image.convert("RGB").crop((round(left), round(top), round(left + side), round(top + side)))
    crop.thumbnail((FACE_CROP_SIDE_PX, FACE_CROP_SIDE_PX))
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
