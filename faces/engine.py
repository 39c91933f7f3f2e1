"""Face detection and 128-d encoding: the only module that touches dlib.

Kept free of Django models so import worker processes can call it with plain
bytes and return plain data. face_recognition (and with it dlib's ~100 MB of
models) is imported on first use, so processes that never encode never load
it; web workers encode selfies through faces/isolated.py, in a child process.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ENCODING_SIZE = 128


class EngineError(Exception):
    """An image could not be turned into face encodings."""


class NotAnImage(EngineError):
    """The bytes are not an image Pillow can decode."""


class ImageTooLarge(EngineError):
    """The decoded image would exceed the pixel limit (decompression bomb guard)."""


@dataclass(frozen=True)
class DetectedFace:
    """One face: its box in the (orientation-corrected) original image, and its encoding."""

    top: int
    right: int
    bottom: int
    left: int
    encoding: np.ndarray = field(repr=False)
    # With EngineOptions.pose: how far the face is turned sideways, 0 (facing the
    # camera) to 1 (in profile), from its landmarks; None otherwise.
    turn: float | None = None


@dataclass(frozen=True)
class Analysis:
    """What encoding one image produced."""

    sha256: str
    width: int
    height: int
    faces: list[DetectedFace]


@dataclass(frozen=True)
class EngineOptions:
    """How faces are found and encoded; defaults are the original Throwback's."""

    max_side_px: int = 500
    max_pixels: int = 50_000_000
    upsample: int = 1
    detector: str = "hog"
    jitters: int = 1
    landmarks: str = "small"
    # Selfies: also measure how far each face is turned (DetectedFace.turn).
    pose: bool = False


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_image(data: bytes, *, max_pixels: int, max_side_px: int | None = None) -> Image.Image:
    """Decode bytes into an upright RGB image.

    Raises NotAnImage for anything Pillow cannot fully decode (including
    truncated files) and ImageTooLarge when the header announces more than
    max_pixels, before any pixel is decoded. With max_side_px, an image more
    than twice that size is shrunk while it is decoded (a JPEG by its decoder,
    `draft`, in steps of 1/2 to 1/8; others by whole-number box reduction,
    `reduce`, before any conversion), so the result's longest side lies
    between max_side_px and about twice it: the decoding of a huge image a
    face does not need (a 7000 × 7000 px selfie) costs little and no later
    step sees all its pixels.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"image is {width}×{height} pixels, more than the limit of {max_pixels:,}"
                )
            image.seek(0)  # first frame of an animation
            if max_side_px is not None and image.format == "JPEG":
                # Asks for at least max_side_px on the longest side, at the scale closest to it.
                image.draft("RGB", _draft_size(width, height, max_side_px))
            image.load()
            if max_side_px is not None:
                image = _reduce(image, max_side_px)
            image = ImageOps.exif_transpose(image) or image
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit greyscale: scale to 8 bits instead of clipping to white.
                image = image.point(lambda value: value / 256).convert("L")
            return image.convert("RGB")
    except ImageTooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image has more than the limit of {max_pixels:,} pixels") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise NotAnImage(f"not a readable image ({exc.__class__.__name__})") from exc


def _draft_size(width: int, height: int, max_side_px: int) -> tuple[int, int]:
    """The size to ask `draft` for: the image scaled so its longest side is max_side_px."""
    scale = max_side_px / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _reduce(image: Image.Image, max_side_px: int) -> Image.Image:
    """Box-reduce by a whole factor when the longest side is at least twice max_side_px."""
    factor = max(image.size) // max_side_px
    if factor < 2 or image.mode.startswith("I;16"):  # 16-bit greyscale is rare: scaled as before
        return image
    exif = image.getexif()  # reduce() keeps no metadata; exif_transpose needs the orientation
    if image.mode == "1":
        image = image.convert("L")  # a byte a pixel, not three
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
    reduced = image.reduce(factor)
    reduced.info["exif"] = exif.tobytes()
    return reduced


def downscale(image: Image.Image, max_side_px: int) -> tuple[Image.Image, float]:
    """Shrink so the longest side is at most max_side_px; returns (image, scale ≤ 1)."""
    longest = max(image.size)
    if longest <= max_side_px:
        return image, 1.0
    scale = max_side_px / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS), scale


def analyse(data: bytes, options: EngineOptions | None = None) -> Analysis:
    """Find and encode every face in an image file's bytes.

    Raises NotAnImage or ImageTooLarge; never returns a partial result.
    """
    options = options or EngineOptions()
    image = load_image(data, max_pixels=options.max_pixels)
    return Analysis(
        sha256=content_hash(data),
        width=image.width,
        height=image.height,
        faces=find_faces(image, options),
    )


def find_faces(image: Image.Image, options: EngineOptions) -> list[DetectedFace]:
    """Faces in an upright RGB image, boxes in that image's pixels.

    The image is downscaled to options.max_side_px for detection and encoding.
    """
    small, scale = downscale(image, options.max_side_px)
    faces = detect_and_encode(np.asarray(small), options)
    if scale == 1.0:
        return faces
    return [
        DetectedFace(
            top=round(face.top / scale),
            right=round(face.right / scale),
            bottom=round(face.bottom / scale),
            left=round(face.left / scale),
            encoding=face.encoding,
            turn=face.turn,
        )
        for face in faces
    ]


def detect_and_encode(pixels: np.ndarray, options: EngineOptions) -> list[DetectedFace]:
    """Run dlib's detector and encoder on an RGB uint8 array."""
    face_recognition = _face_recognition()
    boxes = face_recognition.face_locations(
        pixels, number_of_times_to_upsample=options.upsample, model=options.detector
    )
    if not boxes:
        return []
    encodings = face_recognition.face_encodings(
        pixels, boxes, num_jitters=options.jitters, model=options.landmarks
    )
    turns: list[float | None] = [None] * len(boxes)
    if options.pose:
        turns = [face_turn(marks) for marks in face_recognition.face_landmarks(pixels, boxes, model="large")]
    return [
        DetectedFace(
            top=top,
            right=right,
            bottom=bottom,
            left=left,
            encoding=np.asarray(encoding, dtype=np.float32),
            turn=turn,
        )
        for (top, right, bottom, left), encoding, turn in zip(boxes, encodings, turns, strict=True)
    ]


def face_turn(landmarks: dict[str, list[tuple[int, int]]]) -> float:
    """0 for a face looking at the camera, up to 1 in profile.

    From dlib's 68 landmarks: where the tip of the nose bridge lies between
    the two ends of the jaw line. Facing the camera it is in the middle; the
    further the head turns, the closer it comes to one end.
    """
    jaw, bridge = landmarks["chin"], landmarks["nose_bridge"]
    left, right, nose = jaw[0][0], jaw[-1][0], bridge[-1][0]
    width = right - left
    if width <= 0:
        return 1.0
    return float(min(1.0, abs((nose - left) - (right - nose)) / width))


# A selfie with several faces is used when one is at least this many times the
# area of every other one and its centre lies in the middle of the image.
DOMINANT_AREA_RATIO = 2.0


def dominant_face(faces: list[DetectedFace], width: int, height: int) -> DetectedFace | None:
    """The one face that clearly dominates a selfie (largest by DOMINANT_AREA_RATIO, central), or None."""

    def area(face: DetectedFace) -> int:
        return (face.bottom - face.top) * (face.right - face.left)

    if not faces:
        return None
    ranked = sorted(faces, key=area, reverse=True)
    if len(ranked) > 1 and area(ranked[0]) < DOMINANT_AREA_RATIO * area(ranked[1]):
        return None
    top, right, bottom, left = ranked[0].top, ranked[0].right, ranked[0].bottom, ranked[0].left
    centre_x, centre_y = (left + right) / 2 / width, (top + bottom) / 2 / height
    if not (0.2 <= centre_x <= 0.8 and 0.15 <= centre_y <= 0.85):
        return None
    return ranked[0]


def _face_recognition() -> Any:
    """face_recognition, imported on first use: importing it loads dlib's models."""
    with warnings.catch_warnings():
        # face_recognition_models still uses pkg_resources (hence setuptools<81).
        warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
        import face_recognition
    # face_recognition switches on Pillow's LOAD_TRUNCATED_IMAGES when imported;
    # a truncated photo must be refused, not encoded half grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return face_recognition


def warm_up() -> None:
    """Load dlib's models now (import worker start-up) rather than on the first photo."""
    _face_recognition()
