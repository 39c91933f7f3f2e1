"""State changes for albums, photos, faces and matches.

Import → encode → match are explicit calls: the importer syncs an album's
photo rows, workers encode, and `photo_store` writes one photo's faces and
their matches in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
import os
import secrets
import socket
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from faces import index, matching, thalia_grant
from faces.engine import Analysis, EngineOptions
from faces.models import Album, AlbumAccess, Dismissal, FaceEncoding, ImportRun, Match, Photo
from faces.sources import AlbumListing, SourceAlbum, SourceError
from faces.sources.concrexit import ConcrexitSource
from faces.sources.concrexit_oauth import OAuthError
from members.models import Member

if TYPE_CHECKING:
    from members.models import Member

logger = logging.getLogger(__name__)

# The ImportSummary fields an ImportRun keeps.
IMPORT_RUN_COUNTS = (
    "albums",
    "photos_new",
    "photos_changed",
    "photos_unchanged",
    "photos_removed",
    "photos_encoded",
    "photos_failed",
    "faces",
    "matches",
)


class ImportSummaryLike(Protocol):
    """What import_run_finish reads from importer.ImportSummary (no import cycle)."""

    albums: int
    photos_new: int
    photos_changed: int
    photos_unchanged: int
    photos_removed: int
    photos_encoded: int
    photos_failed: int
    faces: int
    matches: int
    errors: list[str]


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
    photos' old faces. Returns the new faces and the match hits.
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
    hits = matching.references_near_faces(
        [face.pk for face in faces], threshold=settings.THROWBACK_MATCH_THRESHOLD
    )
    Match.objects.bulk_create(
        (
            Match(
                member_id=hit.member_id,
                reference_id=hit.reference_id,
                face_id=hit.face_id,
                distance=hit.distance,
            )
            for hit in hits
        ),
        batch_size=1000,
    )
    return faces, hits


def photo_fail(*, photo_id: int, error: str) -> None:
    """Record why a photo could not be encoded; it is retried on the next import."""
    Photo.objects.filter(pk=photo_id).update(status=Photo.Status.FAILED, error=error[:2000])


# --- import claims and batched stores ----------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What encoding one claimed photo gave: an analysis, or an error.

    `path` is a folder photo's file, copied into media storage when stored.
    """

    photo_id: int
    analysis: Analysis | None
    error: str = ""
    path: str = ""


@dataclass
class Recorded:
    """What `photos_record` wrote: per stored photo (faces, matches), per failed photo its error."""

    stored: dict[int, tuple[int, int]]
    failed: dict[int, str]
    skipped: list[int]  # deleted, changed or taken over meanwhile: nothing written


def claim_token() -> str:
    """A claim owner name, "host:pid:random": unique per run, and tells who to ask whether it lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def photos_claim(*, photo_ids: Sequence[int], token: str) -> list[int]:
    """Claim pending photos for one run; returns the ids now claimed by `token`.

    One conditional UPDATE (`status = pending`): of two runs racing for a
    photo, PostgreSQL re-checks the condition after the first commits, so
    exactly one gets it. Ids claimed elsewhere, done or gone are left out.
    """
    if not photo_ids:
        return []
    Photo.objects.filter(pk__in=photo_ids, status=Photo.Status.PENDING).update(
        status=Photo.Status.CLAIMED, claimed_by=token, claimed_at=timezone.now()
    )
    return list(
        Photo.objects.filter(pk__in=photo_ids, status=Photo.Status.CLAIMED, claimed_by=token)
        .order_by("id")
        .values_list("id", flat=True)
    )


def photo_claim(*, photo_id: int, token: str) -> bool:
    """Claim one pending photo (a Celery task); False when it is not pending."""
    claimed: int = Photo.objects.filter(pk=photo_id, status=Photo.Status.PENDING).update(
        status=Photo.Status.CLAIMED, claimed_by=token, claimed_at=timezone.now()
    )
    return claimed == 1


def claims_release(*, token: str) -> int:
    """Hand a run's unfinished photos back as pending (the run is ending)."""
    released: int = Photo.objects.filter(status=Photo.Status.CLAIMED, claimed_by=token).update(
        status=Photo.Status.PENDING, claimed_by="", claimed_at=None
    )
    return released


def claims_recover(*, now: dt.datetime | None = None) -> int:
    """Make stale claims pending again; returns how many.

    A claim is stale when it is older than THROWBACK_CLAIM_TIMEOUT_SECONDS, or
    when it was made on this host by a process that no longer exists (a run
    killed with kill -9 is recovered by the next run straight away).
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.THROWBACK_CLAIM_TIMEOUT_SECONDS)
    owners = set(
        Photo.objects.filter(status=Photo.Status.CLAIMED).values_list("claimed_by", flat=True).distinct()
    )
    stale = Q(claimed_at__lt=cutoff) | Q(claimed_at__isnull=True)
    dead = [owner for owner in owners if not _claim_owner_alive(owner)]
    if dead:
        stale |= Q(claimed_by__in=dead)
    recovered: int = (
        Photo.objects.filter(status=Photo.Status.CLAIMED)
        .filter(stale)
        .update(status=Photo.Status.PENDING, claimed_by="", claimed_at=None)
    )
    return recovered


def _claim_owner_alive(token: str) -> bool:
    """Whether a claim's process may still run: unknown for other hosts (True)."""
    host, _, rest = token.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def photos_record(*, outcomes: Sequence[Outcome], token: str) -> Recorded:
    """Store a batch of claimed photos' analyses and failures in one transaction.

    Folder photos are first copied into media storage (as in photo_store); a
    copy that fails makes that photo failed. Then, under the match lock: the
    photos still claimed by `token` are locked, their old faces deleted, all
    new faces inserted at once, matched with one `references_near_faces`
    query, and every photo marked done or failed. So a photo is either fully
    stored with its faces and matches, or still claimed (pending after
    `claims_recover`). If the batch fails in the database, each photo is tried
    alone, so one bad photo fails only itself.
    """
    prepared: list[tuple[Outcome, str]] = []
    failed: dict[int, str] = {}
    for outcome in outcomes:
        if outcome.analysis is None:
            failed[outcome.photo_id] = outcome.error
            continue
        try:
            stored_name = _store_file(outcome.path, outcome.analysis.sha256) if outcome.path else ""
        except OSError as exc:
            logger.exception("photo %s: file could not be stored", outcome.photo_id)
            failed[outcome.photo_id] = f"could not be stored: {exc}"
            continue
        prepared.append((outcome, stored_name))
    try:
        return _record(prepared, failed, token=token)
    except DatabaseError:
        logger.exception("a batch of %d photos could not be stored; storing one by one", len(outcomes))
    result = Recorded(stored={}, failed={}, skipped=[])
    for outcome, stored_name in prepared:
        try:
            one = _record([(outcome, stored_name)], {}, token=token)
        except DatabaseError as exc:
            logger.exception("photo %s could not be stored", outcome.photo_id)
            one = _record([], {outcome.photo_id: f"could not be stored: {exc}"}, token=token)
        _merge(result, one)
    _merge(result, _record([], failed, token=token))
    return result


def _merge(into: Recorded, part: Recorded) -> None:
    into.stored.update(part.stored)
    into.failed.update(part.failed)
    into.skipped.extend(part.skipped)


@transaction.atomic
def _record(prepared: list[tuple[Outcome, str]], failed: dict[int, str], *, token: str) -> Recorded:
    ids = [outcome.photo_id for outcome, _ in prepared] + list(failed)
    if not ids:
        return Recorded(stored={}, failed={}, skipped=[])
    matching.match_lock()
    photos = {
        photo.pk: photo
        for photo in Photo.objects.select_for_update()
        .filter(pk__in=ids, status=Photo.Status.CLAIMED, claimed_by=token)
        .order_by("id")
    }
    result = Recorded(stored={}, failed={}, skipped=[pk for pk in ids if pk not in photos])
    for photo_id, error in failed.items():
        if photo_id in photos:
            Photo.objects.filter(pk=photo_id).update(
                status=Photo.Status.FAILED, error=error[:2000], claimed_by="", claimed_at=None
            )
            result.failed[photo_id] = error
    mine = [(outcome, name) for outcome, name in prepared if outcome.photo_id in photos]
    if not mine:
        return result
    FaceEncoding.objects.filter(photo_id__in=[outcome.photo_id for outcome, _ in mine]).delete()
    analyses = []
    for outcome, _ in mine:
        assert outcome.analysis is not None  # noqa: S101 - failures were split off above
        analyses.append((outcome.photo_id, outcome.analysis))
    faces, hits = _faces_insert_and_match(analyses)
    faces_of = Counter(face.photo_id for face in faces)
    photo_of_face = {face.pk: face.photo_id for face in faces}
    matches_of = Counter(photo_of_face[hit.face_id] for hit in hits)
    now = timezone.now()
    for outcome, stored_name in mine:
        photo, analysis = photos[outcome.photo_id], outcome.analysis
        assert analysis is not None  # noqa: S101
        if stored_name and photo.file.name != stored_name:
            old = Photo(pk=photo.pk, file=photo.file.name)
            photo.file.name = stored_name
            transaction.on_commit(partial(_delete_photo_file, old))
        photo.content_hash = analysis.sha256
        photo.width, photo.height = analysis.width, analysis.height
        photo.status, photo.error, photo.encoded_at = Photo.Status.DONE, "", now
        photo.claimed_by, photo.claimed_at = "", None
        result.stored[photo.pk] = (faces_of[photo.pk], matches_of[photo.pk])
    Photo.objects.bulk_update(
        [photos[outcome.photo_id] for outcome, _ in mine],
        [
            "file",
            "content_hash",
            "width",
            "height",
            "status",
            "error",
            "encoded_at",
            "claimed_by",
            "claimed_at",
        ],
    )
    return result


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
    hits = index.faces_near(vector, threshold=settings.THROWBACK_MATCH_THRESHOLD)
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

    The token is Throwback's stored grant (`manage.py connect_thalia`),
    renewed when it is about to expire and once more when the site refuses
    it; without a stored grant, THALIA_ACCESS_TOKEN. A page that waits for
    the website gets a short timeout and no retries, so a slow or absent
    site costs a member seconds, not minutes.
    """
    try:
        stored = thalia_grant.importer_token()
    except OAuthError as exc:
        raise SourceError(
            f"cannot renew Throwback's token for the website: {exc}", permanent=exc.permanent
        ) from exc
    return ConcrexitSource(
        settings.THALIA_API_URL,
        stored or settings.THALIA_ACCESS_TOKEN,
        timeout_s=settings.THALIA_PAGE_TIMEOUT_SECONDS if for_page else settings.THALIA_TIMEOUT_SECONDS,
        retries=0 if for_page else settings.THALIA_RETRIES,
        file_hosts=tuple(settings.THALIA_FILE_HOSTS),
        renew=_renew_stored_token if stored else None,
    )


def _renew_stored_token(rejected: str) -> str | None:
    try:
        return thalia_grant.importer_token_renew(rejected=rejected)
    except OAuthError as exc:
        logger.warning("the website refused Throwback's token and renewing it failed: %s", exc)
        return None


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


# --- The website albums a Thalia member may see ---------------------------------


def album_access_store(*, member: Member, slugs: Iterable[str]) -> None:
    """Make the member's accessible website albums exactly `slugs`."""
    wanted = set(slugs)
    with transaction.atomic():
        AlbumAccess.objects.filter(member=member).exclude(album_slug__in=wanted).delete()
        AlbumAccess.objects.bulk_create(
            [AlbumAccess(member=member, album_slug=slug) for slug in sorted(wanted)], ignore_conflicts=True
        )


def album_access_refresh(*, member: Member, access_token: str) -> int:
    """Ask the website, with the member's own token, which albums they may
    open, and store that set. Returns its size; raises SourceError (and
    keeps the stored set) when the site cannot be asked."""
    source = ConcrexitSource(
        settings.THALIA_API_URL,
        access_token,
        timeout_s=settings.THALIA_PAGE_TIMEOUT_SECONDS,
        retries=0,
        file_hosts=tuple(settings.THALIA_FILE_HOSTS),
    )
    slugs = [album.source_id for album in source.albums()]  # albums() leaves out inaccessible ones
    album_access_store(member=member, slugs=slugs)
    return len(slugs)


# --- members' "not me" ------------------------------------------------------------
def photo_dismiss(*, member: Member, photo_id: int) -> bool:
    """Hide a photo the member is matched in from them for good ("not me").

    The dismissal is kept per member and photo, so it outlives `rematch`,
    new selfies and re-encoding. Returns False when the photo is not one of
    the member's visible matched photos (nothing is revealed or stored).
    Dismissing twice is harmless.
    """
    if not Photo.objects.matched_to(member, dismissed=True).filter(pk=photo_id).exists():
        return False
    dismissal = Dismissal(member=member, photo_id=photo_id)
    dismissal.full_clean(validate_unique=False, validate_constraints=False)
    Dismissal.objects.bulk_create([dismissal], ignore_conflicts=True)
    return True


# --- admin: encode again ------------------------------------------------------------
def photos_reencode(*, photo_ids: Sequence[int]) -> int:
    """Mark photos pending so the next import of their album encodes them again.

    Their current faces and matches stay until the new encoding replaces them
    (photo_store). Returns how many photos were marked.
    """
    return Photo.objects.filter(pk__in=list(photo_ids)).update(status=Photo.Status.PENDING, error="")


# --- import history -----------------------------------------------------------------
def import_run_start(*, source: str, location: str) -> ImportRun:
    """Record that an import run started (finished stays empty until it ends)."""
    run = ImportRun(started=timezone.now(), source=source, location=location[:1000])
    run.full_clean()
    run.save()
    return run


def import_run_finish(*, run: ImportRun, summary: ImportSummaryLike | None, error: str = "") -> ImportRun:
    """Record the end of a run: its summary counts, album/photo errors and a fatal error."""
    run.finished = timezone.now()
    if summary is not None:
        for name in IMPORT_RUN_COUNTS:
            setattr(run, name, getattr(summary, name))
        run.errors = "\n".join(summary.errors)
    run.error = error
    run.full_clean()
    run.save()
    return run
