"""The albums of a source: list them, sync each album's photo rows, mark the unlisted ones missing.

Albums a full run no longer finds are kept but not shown (`missing`), so a
source that lists nothing by mistake (a valid but empty answer from the
website, a folder whose share is not mounted) would hide every album at
once: `sync_albums` refuses before changing anything when a run would hide
all of a source's albums, or more than THROWBACK_IMPORT_MAX_MISSING_SHARE of
them, unless the operator says they really are gone (`allow_missing`).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError

from faces import services
from faces.imports.control import RunControl
from faces.imports.summary import ImportSummary
from faces.models import Album
from faces.sources import DatesUnavailable, Source, SourceAlbum, SourceError

logger = logging.getLogger(__name__)


class HidingRefused(SourceError):
    """A full run would mark too many of a source's albums missing; nothing was changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def sync_albums(
    source: Source,
    *,
    album_id: str | None,
    since: dt.date | None,
    summary: ImportSummary,
    control: RunControl,
    allow_missing: bool = False,
) -> list[int]:
    """Sync the source's albums (or the one `album_id`, or those dated on or after `since`).

    Returns the ids of the albums synced. A full run (neither `album_id` nor
    `since`) then marks the location's unlisted albums missing; it raises
    HidingRefused first, changing nothing, when that would hide too many.
    """
    listed: list[SourceAlbum] = []
    for remote in source.albums():
        control.check()
        if album_id is not None and remote.source_id != album_id:
            continue
        listed.append(remote)
    if album_id is not None and not listed:
        raise SourceError(f"no album {album_id!r} at the source", permanent=True)
    full = album_id is None and since is None
    listed_ids = {printable(remote.source_id) for remote in listed}
    if full and not allow_missing:
        _refuse_hiding_too_many(source, listed_ids)

    synced = []
    dates = _Dates(source, summary)
    for remote in listed:
        control.check()
        remote = dates.fill(remote)
        if since is not None and remote.date is not None and remote.date < since:
            continue
        try:
            listing = source.photos(remote)
            result = services.album_sync(
                source=source.kind, location=source.location, remote=remote, listing=listing
            )
        except (SourceError, DatabaseError, ValidationError) as exc:
            summary.errors.append(f"album {printable(remote.source_id)}: {exc}")
            continue
        summary.errors.extend(
            f"photo {printable(key)}: skipped, {reason}" for key, reason in listing.skipped.items()
        )
        if listing.empty_reason:
            summary.errors.append(f"album {printable(remote.source_id)}: {listing.empty_reason}")
        synced.append(result.album.pk)
        summary.albums += 1
        summary.photos_new += result.new
        summary.photos_changed += result.changed
        summary.photos_unchanged += result.unchanged
        summary.photos_removed += result.removed
        summary.photos_resumed += result.waiting
    if full:
        # Albums this location no longer lists are kept but not shown; albums
        # imported from another folder are not this run's business.
        Album.objects.filter(source=source.kind, location=source.location).exclude(
            source_id__in=listed_ids
        ).update(missing=True)
    return synced


def _refuse_hiding_too_many(source: Source, listed_ids: set[str]) -> None:
    shown = Album.objects.filter(source=source.kind, location=source.location, missing=False)
    total = shown.count()
    hiding = shown.exclude(source_id__in=listed_ids).count()
    share = settings.THROWBACK_IMPORT_MAX_MISSING_SHARE
    if hiding == 0 or (hiding < total and hiding <= share * total):
        return
    if source.kind == Album.Source.FOLDER:
        where, check = f"the folder {source.location}", "Is the folder (its share or disk) mounted?"
    else:
        where, check = (
            f"the website {source.location}",
            "Does the website show these albums to Throwback's member?",
        )
    what = f"all {total}" if hiding == total else f"{hiding} of the {total}"
    limit = "" if hiding == total else f", more than THROWBACK_IMPORT_MAX_MISSING_SHARE ({share:.0%}) allows"
    raise HidingRefused(
        f"{where} lists {len(listed_ids)} albums: this run would hide {what} albums imported from it{limit}. "
        f"Nothing was changed. {check} If the albums really are gone, run `import_albums --allow-missing`."
    )


def printable(text: str) -> str:
    """Text safe to store and print: undecodable bytes from file names replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


class _Dates:
    """Fills albums' dates from their events, once per album (the API has no album date).

    When the source can give no dates at all (the website refuses events to
    the token), that is said once in the summary and the log, and not asked again.
    """

    def __init__(self, source: Source, summary: ImportSummary) -> None:
        self.source, self.summary = source, summary
        self.unavailable = False

    def fill(self, remote: SourceAlbum) -> SourceAlbum:
        if remote.event_id is None:
            return remote
        known = (
            Album.objects.filter(source=self.source.kind, source_id=remote.source_id)
            .values_list("date", flat=True)
            .first()
        )
        if known is not None:
            return SourceAlbum(remote.source_id, remote.title, known, remote.event_id)
        if self.unavailable:
            return remote
        try:
            date = self.source.event_date(remote.event_id)
        except DatesUnavailable as exc:
            self.unavailable = True
            logger.warning("%s", exc)
            self.summary.errors.append(str(exc))
            return remote
        return SourceAlbum(remote.source_id, remote.title, date, remote.event_id)
