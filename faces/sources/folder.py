"""A local folder as a photo source: every immediate sub-folder is an album."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from faces.sources import SourceAlbum, SourceError, SourcePhoto

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


class FolderSource:
    kind = "folder"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise SourceError(f"{root} is not a folder", permanent=True)

    def albums(self) -> Iterator[SourceAlbum]:
        """Sub-folders in name order (hidden ones, starting with '.', skipped)."""
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                yield SourceAlbum(source_id=child.name, title=child.name)

    def photos(self, album: SourceAlbum) -> list[SourcePhoto]:
        """Image files directly in the album folder; source id is 'Album/name'.

        Each file is hashed, so an edited photo is re-encoded on the next run.
        """
        folder = self.root / album.source_id
        if not folder.is_dir():
            raise SourceError(f"album folder {folder} is gone", permanent=True)
        photos = []
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                relative = path.relative_to(self.root).as_posix()
                photos.append(
                    SourcePhoto(
                        source_id=relative, origin=relative, path=str(path), content_hash=_sha256(path)
                    )
                )
        return photos


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
