"""Where photos come from: the association's website or a local folder.

A source lists albums and their photos as plain data; it never touches the
database. Errors become SourceError, permanent (a 403/404, a bad file) or
transient (an outage, a time-out), so the importer knows what to retry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


class SourceError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


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
