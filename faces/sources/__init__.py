"""Where photos come from: the association's website or a local folder.

A source lists albums and their photos as plain data; it never touches the
database. Errors become SourceError, permanent (a 403/404, a bad file) or
transient (an outage, a time-out), so the importer knows what to retry.

This package holds what every source shares (`Source`, the plain data, the
errors) and the folder source (`folder.py`); the website's source is
`thalia.client.ConcrexitSource`, built by `thalia.services.importer_source()`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

# The largest photo file read or downloaded from any source.
MAX_PHOTO_BYTES = 100 * 1024 * 1024


class SourceError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class DatesUnavailable(SourceError):
    """The source can give no album dates at all in this run (the website
    refuses its events to this token); the message says how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class SourceAlbum:
    source_id: str
    title: str
    date: dt.date | None = None
    event_id: int | None = None


@dataclass(frozen=True)
class SourcePhoto:
    """One photo: its id at the source, its origin (the file's path or URL path,
    which changes when the website stores a new file), where to read it (a file
    path, or signed URLs by variant) and, where the source can tell cheaply,
    the SHA-256 of its content."""

    source_id: str
    origin: str
    path: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    content_hash: str = ""


MAX_TITLE_CHARS = 255
MAX_SOURCE_ID_CHARS = 500


@dataclass(frozen=True)
class AlbumListing:
    """An album's photos, and the entries the source listed but could not use.

    `skipped` maps a photo's source id (or, without one, a description) to
    why it was skipped. A skipped photo that is already stored is kept: a
    malformed entry is not proof that the photo is gone.
    """

    photos: list[SourcePhoto]
    skipped: dict[str, str] = field(default_factory=dict)
    # False when an entry could not be tied to a photo id (no usable pk): any
    # stored photo may be that entry, so none is taken as removed.
    complete: bool = True
    # The album's date as its photos tell it (folders: the most common EXIF
    # day); used when the album itself has none.
    date: dt.date | None = None
    # Why a listing has no photos at all, when the source can tell (a folder
    # whose files are not images); reported in the import summary.
    empty_reason: str = ""


class Source(Protocol):
    """What the importer uses of a source: `FolderSource` or the website's `ConcrexitSource`."""

    kind: str  # an Album.Source value
    # Hosts photo files may be downloaded from ("scheme://host"); empty for a folder.
    file_origins: tuple[str, ...]

    @property
    def location(self) -> str:
        """Where the albums are listed from (a folder, the website's address): Album.location."""
        ...

    def albums(self) -> Iterator[SourceAlbum]: ...

    def photos(self, album: SourceAlbum) -> AlbumListing: ...

    def event_date(self, event_id: int) -> dt.date | None:
        """The date of the event an album belongs to, or None when the source will not tell.

        Raises DatesUnavailable when it cannot tell for any album.
        """
        ...
