"""A member's photos as files: one photo, or all of theirs in an album as a zip.

Folder photos are read from media storage. Website photos are fetched on the
server from their signed URL (refreshed first when about to expire), so the
download has a proper name and the zip is complete; a photo that cannot be
fetched is left out of the zip and named in its NOT-INCLUDED.txt.
"""

from __future__ import annotations

import mimetypes
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from faces.models import Album, Photo
from faces.sources import SourceError
from thalia.services import photo_download

CHUNK_BYTES = 256 * 1024
NOTE_NAME = "NOT-INCLUDED.txt"


class PhotoUnavailable(Exception):
    """The photo's file cannot be had right now (gone from storage, site down)."""


@dataclass(frozen=True)
class PhotoFile:
    name: str
    content_type: str
    chunks: Iterable[bytes]


def photo_file_name(photo: Photo) -> str:
    """The file name a download gets: the folder file's name, or `<album>-<pk>.jpg`."""
    if photo.album.source == Album.Source.FOLDER:
        return _safe(PurePosixPath(photo.source_id).name) or f"photo-{photo.pk}.jpg"
    suffix = PurePosixPath(photo.origin).suffix.lower() or ".jpg"
    return f"{_safe(photo.album.source_id)}-{_safe(photo.source_id)}{suffix}"


def _safe(text: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", text).strip("._")[:150]


def photo_open(photo: Photo) -> PhotoFile:
    """The photo's bytes, as chunks. Raises PhotoUnavailable."""
    name = photo_file_name(photo)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if photo.album.source == Album.Source.FOLDER:
        if not photo.file:
            raise PhotoUnavailable("no stored file")
        try:
            handle = default_storage.open(photo.file.name, "rb")
        except FileNotFoundError as exc:
            raise PhotoUnavailable("file missing from storage") from exc
        return PhotoFile(name, content_type, _read_chunks(handle))
    return PhotoFile(name, content_type, [_fetch(photo)])


def _read_chunks(handle: File[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _fetch(photo: Photo) -> bytes:
    try:
        return photo_download(photo)
    except SourceError as exc:
        raise PhotoUnavailable(str(exc)) from exc


class _Sink:
    """A write-only stream whose bytes are taken out as the zip is written."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def photos_zip(photos: list[Photo]) -> Iterator[bytes]:
    """Stream a zip (stored, not compressed: JPEGs do not shrink) of the photos.

    Entries are written one after another without seeking, so the response
    starts at once and memory holds one chunk. Photos that cannot be had are
    listed in NOT-INCLUDED.txt at the end instead.
    """
    sink = _Sink()
    used: set[str] = set()
    missing: list[str] = []
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for photo in photos:
            name = _unique(photo_file_name(photo), used)
            try:
                file = photo_open(photo)
                chunks = iter(file.chunks)
                first = next(chunks, b"")
            except PhotoUnavailable as exc:
                missing.append(f"{name}: {exc}")
                continue
            stamp = timezone.localtime(photo.created).timetuple()[:6]
            info = zipfile.ZipInfo(name, date_time=stamp)
            with archive.open(info, mode="w") as entry:
                entry.write(first)
                yield sink.take()
                for chunk in chunks:
                    entry.write(chunk)
                    yield sink.take()
            yield sink.take()
        if missing:
            archive.writestr(
                NOTE_NAME,
                "These photos could not be fetched right now; try again later:\n" + "\n".join(missing) + "\n",
            )
    yield sink.take()


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 1
    while candidate in used:
        number += 1
        stem, dot, suffix = name.rpartition(".")
        candidate = f"{stem}-{number}.{suffix}" if dot else f"{name}-{number}"
    used.add(candidate)
    return candidate


def zip_file_name(album: Album) -> str:
    return f"{_safe(album.title) or 'album'}.zip"
