"""Why a selfie may find few photos: a small, dark, blurred or turned face (a warning, not a refusal).

Measured on the face's box in the stored selfie (docs/accuracy.md): dlib's
encoder works on a 150-pixel aligned crop, so a face much smaller than that
is enlarged and loses detail; a dark, blurred or turned face gives an
encoding far from the same person's event photos. The limits flag what is
clearly off: on the development set's selfies (bench/accuracy_sim.py's
images) no face is darker than 70 and the 5 % least sharp measure 11; 9 %
are turned more than 0.6 (faces.engine.face_turn).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

SMALL_FACE_PX = 60
DARK_MEAN = 60.0  # mean luminance 0–255 of the face
TURNED = 0.6  # faces.engine.face_turn: 0 facing the camera, 1 in profile
BLUR_SHARPNESS = 10.0  # 1000 × var(Laplacian) / var(pixels) of the face scaled to 128 px
MEASURE_SIDE_PX = 128

MESSAGES = {
    "small": "Your face is small in this photo; a closer photo finds you in more photos.",
    "dark": "This photo is dark; a photo in good light finds you in more photos.",
    "blurred": "This photo looks blurred; a sharp photo finds you in more photos.",
    "turned": "Your face is turned away; a photo looking at the camera finds you in more photos.",
}


def face_measures(image: Image.Image, box: tuple[int, int, int, int]) -> dict[str, float]:
    """Size (px), mean luminance and Laplacian variance of the face box (top, right, bottom, left)."""
    top, right, bottom, left = box
    top, left = max(0, top), max(0, left)
    bottom, right = min(image.height, bottom), min(image.width, right)
    side = float(min(bottom - top, right - left))
    face = image.crop((left, top, right, bottom)).convert("L")
    pixels = np.asarray(face, dtype=np.float64)
    brightness = float(pixels.mean()) if pixels.size else 0.0
    scaled = face.resize((MEASURE_SIDE_PX, MEASURE_SIDE_PX), Image.Resampling.BILINEAR)
    edges = scaled.filter(ImageFilter.Kernel((3, 3), [0, 1, 0, 1, -4, 1, 0, 1, 0], scale=1, offset=128))
    # Pillow leaves the outermost pixels unfiltered: they are not edges. Divided
    # by the face's own contrast, so a dark (low-contrast) face is not "blurred" too.
    laplacian = float(np.asarray(edges, dtype=np.float64)[1:-1, 1:-1].var())
    contrast = float(np.asarray(scaled, dtype=np.float64).var())
    sharpness = 1000.0 * laplacian / contrast if contrast > 0 else 0.0
    return {"side_px": side, "brightness": brightness, "sharpness": sharpness}


def selfie_warnings(
    image: Image.Image, box: tuple[int, int, int, int], *, turn: float | None = None
) -> list[str]:
    """The warning codes for a selfie's face: any of "small", "dark", "blurred", "turned"."""
    measures = face_measures(image, box)
    warnings = []
    if measures["side_px"] < SMALL_FACE_PX:
        warnings.append("small")
    if measures["brightness"] < DARK_MEAN:
        warnings.append("dark")
    if measures["sharpness"] < BLUR_SHARPNESS:
        warnings.append("blurred")
    if turn is not None and turn > TURNED:
        warnings.append("turned")
    return warnings
