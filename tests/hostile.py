"""Hostile and unusual image files, made from one real face photo.

Shared by the upload and folder-import tests. Each maker takes the bytes of
an upright JPEG with one face and returns the bytes to send.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

# EXIF orientation → the transpose that turns the upright image into what a
# camera stores with that tag (exif_transpose undoes it).
STORED_FOR_ORIENTATION: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _open(face: bytes) -> Image.Image:
    with Image.open(io.BytesIO(face)) as image:
        return image.convert("RGB")


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def cmyk_jpeg(face: bytes) -> bytes:
    return _save(_open(face).convert("CMYK"), "JPEG", quality=90)


def grey_16bit_png(face: bytes) -> bytes:
    grey = _open(face).convert("L")
    wide = grey.point(lambda value: value * 256, "I").convert("I;16")
    return _save(wide, "PNG")


def palette_png(face: bytes) -> bytes:
    return _save(_open(face).convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG")


def alpha_png(face: bytes) -> bytes:
    image = _open(face).convert("RGBA")
    image.putalpha(200)
    return _save(image, "PNG")


def grey_alpha_png(face: bytes) -> bytes:
    return _save(_open(face).convert("LA"), "PNG")


def animated_gif(face: bytes) -> bytes:
    first = _open(face)
    second = Image.new("RGB", first.size, "black")
    return _save(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def webp(face: bytes) -> bytes:
    return _save(_open(face), "WEBP", quality=85)


def bmp(face: bytes) -> bytes:
    return _save(_open(face), "BMP")


def tiff(face: bytes) -> bytes:
    return _save(_open(face), "TIFF")


def progressive_jpeg(face: bytes) -> bytes:
    return _save(_open(face), "JPEG", quality=85, progressive=True)


def with_orientation(face: bytes, orientation: int) -> bytes:
    """The photo as a camera stores it with this EXIF orientation tag."""
    image = _open(face)
    transpose = STORED_FOR_ORIENTATION[orientation]
    stored = image.transpose(transpose) if transpose is not None else image
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(stored, "JPEG", quality=90, exif=exif)


def tiny_10x10(face: bytes) -> bytes:
    return _save(_open(face).resize((10, 10)), "PNG")


def truncated_jpeg(face: bytes) -> bytes:
    return face[: len(face) // 2]


def truncated_png(face: bytes) -> bytes:
    png = _save(_open(face), "PNG")
    return png[: len(png) // 2]


def png_bomb(face: bytes) -> bytes:
    """A valid 16×16 PNG whose header claims 60000×60000 pixels (3.6 gigapixels)."""
    png = _save(Image.new("L", (16, 16)), "PNG")
    ihdr_at = png.index(b"IHDR")
    body = struct.pack(">II", 60000, 60000) + png[ihdr_at + 12 : ihdr_at + 17]
    chunk = b"IHDR" + body
    patched = struct.pack(">I", len(body)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return png[: ihdr_at - 4] + patched + png[ihdr_at + 4 + 13 + 4 :]


def gif_bomb(face: bytes) -> bytes:
    """A tiny GIF whose logical screen is 65535×65535."""
    gif = bytearray(_save(Image.new("L", (8, 8)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    gif[gif.index(b",") + 5 : gif.index(b",") + 9] = struct.pack("<HH", 65535, 65535)
    return bytes(gif)


def jpeg_bomb(face: bytes) -> bytes:
    """The JPEG with its frame header patched to 65000×65000."""
    data = bytearray(face)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at >= 0:
            data[at + 5 : at + 9] = struct.pack(">HH", 65000, 65000)
            return bytes(data)
    raise ValueError("no frame header")


def heic(face: bytes) -> bytes:
    """The start of an HEIC file (ISO-BMFF 'ftyp heic'), which Pillow cannot read."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 200


def svg_with_script(face: bytes) -> bytes:
    return (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b"<script>fetch('/api/references/').then(r => r.text()).then(alert)</script>"
        b'<rect width="100" height="100"/></svg>'
    )


def html_page(face: bytes) -> bytes:
    return b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def pdf(face: bytes) -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def text(face: bytes) -> bytes:
    return b"hello, I am a text file with an image's name"


def zero_bytes(face: bytes) -> bytes:
    return b""


def jpeg_header_only(face: bytes) -> bytes:
    return face[:2] + b"\x00" * 64
