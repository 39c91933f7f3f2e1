"""Albums and photos: syncing an album's photo rows, storing one photo's faces.

The import's sync (`album_sync`), the one-photo store (`photo_store`) and
the face insert and match it shares with the batched store in `claims`,
marking photos pending again (`photos_reencode`),
the engine options imports and selfies use, and the photo files in media
storage (stored under their content hash, deleted with their last photo).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from faces import index, matching
from faces.engine import Analysis, EngineOptions
from faces.models import Album, FaceEncoding, Photo
from faces.services import assignment
from faces.sources import AlbumListing, SourceAlbum


def engine_options(*, selfie: bool = False) -> EngineOptions:
    """Engine options from settings, shared by imports and selfie uploads.

    A selfie differs only in its number of jitters (THROWBACK_SELFIE_JITTERS)
    and in measuring how far its face is turned (for the selfie's warnings).
    """
    return EngineOptions(
        max_side_px=settings.THROWBACK_ENCODE_MAX_SIDE,
        max_pixels=settings.THROWBACK_MAX_IMAGE_PIXELS,
        upsample=settings.THROWBACK_DETECT_UPSAMPLE,
        detector=settings.THROWBACK_DETECTOR,
        jitters=settings.THROWBACK_SELFIE_JITTERS if selfie else settings.THROWBACK_ENCODE_JITTERS,
        landmarks=settings.THROWBACK_LANDMARKS,
        pose=selfie,
    )


@dataclass
class AlbumSync:
    album: Album
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    waiting: int = 0  # pending or claimed already (an earlier run's), unchanged at the source


@transaction.atomic
def album_sync(*, source: str, location: str, remote: SourceAlbum, listing: AlbumListing) -> AlbumSync:
    """Create or update an album and its photo rows from a complete listing.

    New photos, photos whose origin or content hash changed and photos that
    failed before become pending; photos gone from the source (neither listed
    nor skipped as malformed) are deleted with their faces and matches, unless
    the listing is incomplete (an entry without a usable id). Encoded,
    unchanged photos are left alone.
    """
    album, _ = Album.objects.get_or_create(
        source=source, source_id=remote.source_id, defaults={"title": remote.title}
    )
    album.title = remote.title
    album.missing = False
    album.location = location
    date = remote.date if remote.date is not None else listing.date
    if date is not None:
        album.date = date
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
        else:
            result.waiting += 1
        photo.save(update_fields=fields)
    if not listing.complete:
        existing.clear()  # an unidentifiable entry may be any of them: remove none
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
        faces, hits = _faces_insert_and_match([(photo.pk, analysis)])
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


def _faces_insert_and_match(
    analyses: Sequence[tuple[int, Analysis]],
) -> tuple[list[FaceEncoding], list[matching.Hit]]:
    """Insert the faces of analysed photos, put them in the face index and store their matches.

    The caller holds the match lock in its transaction and has deleted the
    photos' old faces. Returns the new faces and the hits stored as matches.
    """
    faces: list[FaceEncoding] = []
    for photo_id, analysis in analyses:
        for detected in analysis.faces:
            face = FaceEncoding(
                photo_id=photo_id,
                top=detected.top,
                right=detected.right,
                bottom=detected.bottom,
                left=detected.left,
            )
            face.set_encoding(detected.encoding)
            faces.append(face)
    FaceEncoding.objects.bulk_create(faces, batch_size=500)
    index.faces_assign([face.pk for face in faces])
    # One face, one person per photo, and the "Is this you?" band (assignment.py).
    hits = assignment.hits_store(
        matching.references_near_faces([(face.pk, face.encoding) for face in faces], widen=assignment.band()),
        {face.pk: face.photo_id for face in faces},
    )
    return faces, hits


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


# --- admin: encode again ------------------------------------------------------------
def photos_reencode(*, photo_ids: Sequence[int]) -> int:
    """Mark photos pending so the next import of their album encodes them again.

    Their current faces and matches stay until the new encoding replaces them
    (photo_store). Returns how many photos were marked.
    """
    return Photo.objects.filter(pk__in=list(photo_ids)).update(status=Photo.Status.PENDING, error="")
