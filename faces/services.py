"""State changes for albums, photos, faces and matches.

Import → encode → match are explicit calls: the importer syncs an album's
photo rows, workers encode, and `photo_store` writes one photo's faces and
their matches in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from faces import matching
from faces.engine import Analysis, EngineOptions
from faces.models import Album, FaceEncoding, Match, Photo
from faces.sources import AlbumListing, SourceAlbum, SourceError
from faces.sources.concrexit import ConcrexitSource

logger = logging.getLogger(__name__)


def engine_options(*, selfie: bool = False) -> EngineOptions:
    """Engine options from settings, shared by imports and selfie uploads.

    A selfie differs only in its number of jitters (THROWBACK_SELFIE_JITTERS).
    """
    return EngineOptions(
        max_side_px=settings.THROWBACK_ENCODE_MAX_SIDE,
        max_pixels=settings.THROWBACK_MAX_IMAGE_PIXELS,
        upsample=settings.THROWBACK_DETECT_UPSAMPLE,
        detector=settings.THROWBACK_DETECTOR,
        jitters=settings.THROWBACK_SELFIE_JITTERS if selfie else settings.THROWBACK_ENCODE_JITTERS,
        landmarks=settings.THROWBACK_LANDMARKS,
    )


@dataclass
class AlbumSync:
    album: Album
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0


@transaction.atomic
def album_sync(*, source: str, location: str, remote: SourceAlbum, listing: AlbumListing) -> AlbumSync:
    """Create or update an album and its photo rows from a complete listing.

    New photos, photos whose origin or content hash changed and photos that
    failed before become pending; photos gone from the source (neither listed
    nor skipped as malformed) are deleted with their faces and matches.
    Encoded, unchanged photos are left alone.
    """
    album, _ = Album.objects.get_or_create(
        source=source, source_id=remote.source_id, defaults={"title": remote.title}
    )
    album.title = remote.title
    album.missing = False
    album.location = location
    if remote.date is not None:
        album.date = remote.date
    album.full_clean()
    album.save()

    result = AlbumSync(album=album)
    now = timezone.now()
    existing = {photo.source_id: photo for photo in album.photos.all()}
    for skipped in listing.skipped:
        existing.pop(skipped, None)  # listed but unusable now: keep what we have
    for item in listing.photos:
        photo = existing.pop(item.source_id, None)
        if photo is None:
            Photo.objects.create(
                album=album,
                source_id=item.source_id,
                origin=item.origin,
                remote_urls=item.urls,
                urls_fetched_at=now if item.urls else None,
            )
            result.new += 1
            continue
        fields = ["remote_urls", "urls_fetched_at"]
        photo.remote_urls, photo.urls_fetched_at = item.urls, now if item.urls else None
        content_changed = bool(
            item.content_hash and photo.content_hash and item.content_hash != photo.content_hash
        )
        if photo.origin != item.origin or content_changed:
            photo.origin, photo.status = item.origin, Photo.Status.PENDING
            fields += ["origin", "status"]
            result.changed += 1
        elif photo.status == Photo.Status.FAILED:
            photo.status = Photo.Status.PENDING
            fields.append("status")
            result.changed += 1
        elif photo.status == Photo.Status.DONE:
            result.unchanged += 1
        photo.save(update_fields=fields)
    for gone in existing.values():
        gone.delete()
        # After the commit, as in photo_store: a rolled-back sync keeps the file.
        transaction.on_commit(partial(_delete_photo_file, gone))
        result.removed += 1
    return result


def photo_store(*, photo_id: int, analysis: Analysis, path: str = "") -> tuple[int, int]:
    """Replace a photo's faces with a fresh analysis and match them.

    For folder photos, `path` is copied into media storage under a name
    derived from its content, so re-running after an interruption reuses it.
    Returns (faces stored, matches made). Faces, matches and the photo's
    status are written in one transaction.
    """
    stored_name = _store_file(path, analysis.sha256) if path else ""
    with transaction.atomic():
        matching.match_lock()
        photo = Photo.objects.select_for_update().get(pk=photo_id)
        photo.faces.all().delete()
        faces = []
        for detected in analysis.faces:
            face = FaceEncoding(
                photo=photo,
                top=detected.top,
                right=detected.right,
                bottom=detected.bottom,
                left=detected.left,
            )
            face.set_encoding(detected.encoding)
            faces.append(face)
        FaceEncoding.objects.bulk_create(faces)
        hits = matching.references_near_faces(
            [face.pk for face in faces], threshold=settings.THROWBACK_MATCH_THRESHOLD
        )
        Match.objects.bulk_create(
            Match(
                member_id=hit.member_id,
                reference_id=hit.reference_id,
                face_id=hit.face_id,
                distance=hit.distance,
            )
            for hit in hits
        )
        if stored_name and photo.file.name != stored_name:
            old = Photo(pk=photo.pk, file=photo.file.name)
            photo.file.name = stored_name
            transaction.on_commit(lambda: _delete_photo_file(old))
        photo.content_hash = analysis.sha256
        photo.width, photo.height = analysis.width, analysis.height
        photo.status, photo.error = Photo.Status.DONE, ""
        photo.encoded_at = timezone.now()
        photo.save()
    return len(faces), len(hits)


def photo_fail(*, photo_id: int, error: str) -> None:
    """Record why a photo could not be encoded; it is retried on the next import."""
    Photo.objects.filter(pk=photo_id).update(status=Photo.Status.FAILED, error=error[:2000])


def _store_file(path: str, sha256: str) -> str:
    suffix = Path(path).suffix.lower() or ".jpg"
    name = f"photos/{sha256[:2]}/{sha256}{suffix}"
    if default_storage.exists(name) and default_storage.size(name) != Path(path).stat().st_size:
        default_storage.delete(name)  # cut short by an interrupted run
    if not default_storage.exists(name):
        with Path(path).open("rb") as handle:
            saved = default_storage.save(name, File(handle, name=Path(name).name))
        if saved != name:  # a concurrent run stored it first
            default_storage.delete(saved)
    return name


def _delete_photo_file(photo: Photo) -> None:
    """Delete a stored photo file unless another photo has the same content."""
    if photo.file and not Photo.objects.filter(file=photo.file.name).exclude(pk=photo.pk).exists():
        default_storage.delete(photo.file.name)


def photo_content_type(photo: Photo) -> str:
    return mimetypes.guess_type(photo.file.name)[0] or "application/octet-stream"


# --- matching ---------------------------------------------------------------
def reference_match(*, reference_id: int, vector: Sequence[float] | np.ndarray) -> int:
    """Store matches of one reference against every photo face (one query)."""
    from members.models import ReferenceFace

    reference = ReferenceFace.objects.only("id", "member_id").get(pk=reference_id)
    hits = matching.faces_near(vector, threshold=settings.THROWBACK_MATCH_THRESHOLD)
    Match.objects.bulk_create(
        [
            Match(member_id=reference.member_id, reference=reference, face_id=face_id, distance=d)
            for face_id, d in hits
        ],
        ignore_conflicts=True,
    )
    return len(hits)


@transaction.atomic
def matches_rebuild() -> int:
    """Recompute every stored match (after a threshold change); idempotent."""
    from members.models import ReferenceFace

    matching.match_lock()
    Match.objects.all().delete()
    total = 0
    for reference in ReferenceFace.objects.all().iterator():
        total += reference_match(reference_id=reference.pk, vector=reference.encoding)
    return total


# --- signed URL cache ---------------------------------------------------------
def url_is_fresh(photo: Photo, *, now: dt.datetime, margin_s: int) -> bool:
    """Whether the cached signed URLs stay valid for at least margin_s more."""
    if not photo.remote_urls or photo.urls_fetched_at is None:
        return False
    expires = photo.urls_fetched_at + dt.timedelta(seconds=settings.THALIA_URL_TTL_SECONDS)
    return expires - dt.timedelta(seconds=margin_s) > now


def concrexit_source(*, for_page: bool = False) -> ConcrexitSource:
    """The website's API from settings.

    A page that waits for the website gets a short timeout and no retries,
    so a slow or absent site costs a member seconds, not minutes.
    """
    return ConcrexitSource(
        settings.THALIA_API_URL,
        settings.THALIA_ACCESS_TOKEN,
        timeout_s=settings.THALIA_PAGE_TIMEOUT_SECONDS if for_page else settings.THALIA_TIMEOUT_SECONDS,
        retries=0 if for_page else settings.THALIA_RETRIES,
        file_hosts=tuple(settings.THALIA_FILE_HOSTS),
    )


REFRESH_FAILURE_MEMORY_S = 60


def photo_urls_refresh(
    photos: list[Photo], *, for_page: bool = False, source: ConcrexitSource | None = None
) -> None:
    """Re-fetch signed URLs for website photos about to expire.

    One album request refreshes all of that album's photos. When the site
    cannot be reached, the cached URLs are kept; `selectors.with_display_urls`
    then hides the ones already expired. For pages, an album whose refresh
    just failed is not tried again for a minute. An import passes its own
    source, so its session is reused rather than one made per chunk.
    """
    now = timezone.now()
    margin = settings.THALIA_URL_REFRESH_MARGIN_SECONDS
    stale_albums = {
        photo.album_id: photo.album
        for photo in photos
        if photo.album.source == Album.Source.CONCREXIT and not url_is_fresh(photo, now=now, margin_s=margin)
    }
    if not stale_albums:
        return
    if source is None:
        try:
            source = concrexit_source(for_page=for_page)
        except SourceError as exc:
            logger.warning("cannot refresh photo URLs: %s", exc)
            return
    by_id = {photo.pk: photo for photo in photos}
    for album in stale_albums.values():
        failure_key = f"throwback:url-refresh-failed:{album.pk}"
        if for_page and cache.get(failure_key):
            continue
        try:
            listing = source.photos(SourceAlbum(album.source_id, album.title))
        except SourceError as exc:
            logger.warning("cannot refresh URLs of album %s: %s", album.source_id, exc)
            if for_page:
                cache.set(failure_key, True, REFRESH_FAILURE_MEMORY_S)
            continue
        fresh = {p.source_id: p for p in listing.photos}
        fetched = timezone.now()
        updated = []
        for photo in album.photos.only("id", "source_id", "origin"):
            item = fresh.get(photo.source_id)
            if item is None or item.origin != photo.origin:
                continue  # gone or replaced: the next import deals with it
            photo.remote_urls, photo.urls_fetched_at = item.urls, fetched
            updated.append(photo)
            if photo.pk in by_id:
                by_id[photo.pk].remote_urls, by_id[photo.pk].urls_fetched_at = item.urls, fetched
        Photo.objects.bulk_update(updated, ["remote_urls", "urls_fetched_at"], batch_size=500)
