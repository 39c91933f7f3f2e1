"""A local folder as a photo source: every immediate sub-folder is an album.

An album holds the image files in its folder and in the folders below it
(hidden ones skipped). Its date is the date at the start of the folder's
name (`2019-08-20 Trip`), else the most common day the photos' EXIF says
they were taken, else none.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

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
        """Sub-folders in name order (hidden ones, starting with '.', skipped).

        A folder named `2019-08-20 Trip` is the album "Trip" of 20 August 2019.
        """
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                date, title = date_from_name(child.name)
                yield SourceAlbum(source_id=child.name, title=title, date=date)

    def photos(self, album: SourceAlbum) -> AlbumListing:
        """Image files in the album folder and below; source id is 'Album/…/name'.

        Each file is hashed, so an edited photo is re-encoded on the next run,
        and its EXIF date read (for the album's date). Names that cannot be
        stored (not valid UTF-8, too long) are skipped with a reason, as is
        every file of an album whose name cannot be. An album without images
        is an error that says so.
        """
        folder = self.root / album.source_id
        if not folder.is_dir():
            raise SourceError(f"album folder {folder} is gone", permanent=True)
        album_problem = _name_problem(album.source_id, MAX_TITLE_CHARS)
        if album_problem:
            raise SourceError(f"album folder name {album_problem}", permanent=True)
        photos, skipped = [], {}
        days: Counter[dt.date] = Counter()
        for path in _image_files(folder):
            relative = path.relative_to(self.root).as_posix()
            problem = _name_problem(relative, MAX_SOURCE_ID_CHARS)
            if problem:
                skipped[relative.encode("utf-8", "replace").decode()] = f"file name {problem}"
                continue
            photos.append(
                SourcePhoto(source_id=relative, origin=relative, path=str(path), content_hash=_sha256(path))
            )
            taken = exif_date(path)
            if taken is not None:
                days[taken] += 1
        # The most common day; a tie goes to the earliest of them.
        date = min(days, key=lambda day: (-days[day], day)) if days else None
        empty = "" if photos or skipped else _why_empty(folder)
        return AlbumListing(photos=photos, skipped=skipped, date=date, empty_reason=empty)


def _image_files(folder: Path) -> list[Path]:
    """Image files in folder and every folder below it (hidden folders skipped), in path order.

    Symbolic links to folders are not followed, so a link loop cannot make the walk endless.
    """
    found = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        for name in files:
            path = Path(directory) / name
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                found.append(path)
    return sorted(found)


def _why_empty(folder: Path) -> str:
    """Why an album folder gave no photos, for the import summary."""
    others = sum(len(files) for _, _, files in os.walk(folder))
    kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
    if others:
        return f"empty: none of its {others} files (in it or its sub-folders) is an image ({kinds})"
    return f"empty: no files in it or its sub-folders (images: {kinds})"


# "2019-08-20 Trip", "2019-08-20_Trip", "20190820 - Trip"; the date must be a real day.
NAME_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})(?:[\s_\-–.]+|$)")


def date_from_name(name: str) -> tuple[dt.date | None, str]:
    """The date at the start of a folder name and the title after it (the whole name without one)."""
    found = NAME_DATE.match(name)
    if found is None:
        return None, name
    try:
        date = dt.date(*(int(part) for part in found.groups()))
    except ValueError:  # 2019-02-30: not a date, part of the title
        return None, name
    return date, name[found.end() :].strip() or name


# EXIF tags: DateTimeOriginal (in the Exif IFD), else DateTime (IFD0).
EXIF_IFD, DATE_TIME_ORIGINAL, DATE_TIME = 0x8769, 36867, 306
# EXIF writes "YYYY:MM:DD HH:MM:SS"; cameras without a set clock write zeros or 1970.
EXIF_DATE = re.compile(r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})")
EXIF_EARLIEST_YEAR = 1990


def exif_date(path: Path) -> dt.date | None:
    """The day a photo was taken according to its EXIF, or None.

    Reads the header only. Missing, malformed or impossible dates and files
    Pillow cannot open all give None: a bad EXIF block never fails an import
    (the encode step reports a file that is not an image).
    """
    try:
        # Pillow warns about corrupt EXIF blocks; for a date they are just "none".
        with warnings.catch_warnings(), Image.open(path) as image:
            warnings.simplefilter("ignore")
            exif = image.getexif()
            raw = exif.get_ifd(EXIF_IFD).get(DATE_TIME_ORIGINAL) or exif.get(DATE_TIME)
    except Exception:  # noqa: BLE001 - any decoder error in foreign metadata means "no date"
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    found = EXIF_DATE.match(raw) if isinstance(raw, str) else None
    if found is None:
        return None
    try:
        date = dt.date(*(int(part) for part in found.groups()))
    except ValueError:
        return None
    return date if EXIF_EARLIEST_YEAR <= date.year <= dt.datetime.now(dt.UTC).year + 1 else None


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
