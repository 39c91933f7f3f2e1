"""A local folder as a photo source: every immediate sub-folder is an album."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

from faces.sources import (
    MAX_SOURCE_ID_CHARS,
    MAX_TITLE_CHARS,
    AlbumListing,
    SourceAlbum,
    SourceError,
    SourcePhoto,
)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


class FolderSource:
    kind = "folder"
    file_origins: tuple[str, ...] = ()  # files are read, never downloaded

    def __init__(self, root: Path | str) -> None:
        self.root = self.resolve(root)
        if not self.root.is_dir():
            raise SourceError(f"{root} is not a folder", permanent=True)

    @staticmethod
    def resolve(root: Path | str) -> Path:
        """The absolute folder a root names: its `location`, also before it is checked."""
        return Path(root).resolve()

    @property
    def location(self) -> str:
        return str(self.root)

    def event_date(self, event_id: int) -> dt.date | None:
        return None  # folders have no events

    def albums(self) -> Iterator[SourceAlbum]:
        """Sub-folders in name order (hidden ones, starting with '.', skipped)."""
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                yield SourceAlbum(source_id=child.name, title=child.name)

    def photos(self, album: SourceAlbum) -> AlbumListing:
        """Image files directly in the album folder; source id is 'Album/name'.

        Each file is hashed, so an edited photo is re-encoded on the next run.
        Names that cannot be stored (not valid UTF-8, too long) are skipped
        with a reason, as is every file of an album whose name cannot be.
        """
        folder = self.root / album.source_id
        if not folder.is_dir():
            raise SourceError(f"album folder {folder} is gone", permanent=True)
        album_problem = _name_problem(album.source_id, MAX_TITLE_CHARS)
        if album_problem:
            raise SourceError(f"album folder name {album_problem}", permanent=True)
        photos, skipped = [], {}
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                relative = path.relative_to(self.root).as_posix()
                problem = _name_problem(relative, MAX_SOURCE_ID_CHARS)
                if problem:
                    skipped[relative.encode("utf-8", "replace").decode()] = f"file name {problem}"
                    continue
                photos.append(
                    SourcePhoto(
                        source_id=relative, origin=relative, path=str(path), content_hash=_sha256(path)
                    )
                )
        return AlbumListing(photos=photos, skipped=skipped)


def _name_problem(name: str, max_chars: int) -> str:
    """Why a file or folder name cannot be stored, or ""."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if len(name) > max_chars:
        return f"is longer than {max_chars} characters"
    return ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(block)
    except OSError:
        return ""  # unreadable now: the encode step records the error
    return digest.hexdigest()


def read_file(path: str, *, max_bytes: int) -> bytes:
    """Read a photo file, refusing files larger than max_bytes."""
    try:
        file_path = Path(path)
        size = file_path.stat().st_size
        if size > max_bytes:
            raise SourceError(f"file is {size:,} bytes, over the {max_bytes:,} limit", permanent=True)
        return file_path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}", permanent=False) from exc
