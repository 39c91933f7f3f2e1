"""Import claims and batched stores: how import runs and Celery workers share photos.

A run claims pending photos under its token (`claim_token`, `photos_claim`,
`photo_claim`), encodes them elsewhere, and stores a batch of outcomes in
one transaction (`photos_record`); claims a run leaves behind are handed
back (`claims_release`) or recovered when stale (`claims_recover`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from faces import matching
from faces.engine import Analysis
from faces.models import FaceEncoding, Photo
from faces.services.photos import _delete_photo_file, _faces_insert_and_match, _store_file

logger = logging.getLogger(__name__)


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
    dead = [owner for owner in owners if not owner_alive(owner)]
    if dead:
        stale |= Q(claimed_by__in=dead)
    recovered: int = (
        Photo.objects.filter(status=Photo.Status.CLAIMED)
        .filter(stale)
        .update(status=Photo.Status.PENDING, claimed_by="", claimed_at=None)
    )
    return recovered


@dataclass(frozen=True)
class Held:
    """Photos of some albums that one other process still claims."""

    owner: str
    photos: int
    since: dt.datetime | None


def claims_held(*, album_ids: Sequence[int]) -> list[Held]:
    """Who claims photos of these albums now (after `claims_recover`: live or not yet stale owners)."""
    rows = (
        Photo.objects.filter(album_id__in=album_ids, status=Photo.Status.CLAIMED)
        .values("claimed_by")
        .annotate(photos=Count("id"), since=Min("claimed_at"))
        .order_by("since", "claimed_by")
    )
    return [Held(row["claimed_by"], row["photos"], row["since"]) for row in rows]


def owner_alive(token: str, *, me: str = "") -> bool:
    """Whether the process a token ("host:pid:random") names may still run.

    Known only on its own host: whether that pid exists. A token with this
    process's pid but not `me` (this process's own token, when given) is an
    earlier process's: a container restarted under the same name gets the
    same pids. For other hosts: unknown (True).
    """
    host, _, rest = token.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    if me and token != me and int(pid_text) == os.getpid():
        return False
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
    alone, so one bad photo fails only itself. If the database connection was
    lost (a restart, the network), the batch is tried once more on a new
    connection, with nothing logged; when that fails too, the error is raised
    (the run stops, the photos stay claimed until released or recovered) and
    no photo is failed for it.
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
    except DatabaseError as exc:
        if connection_lost():
            connection.close()  # a new one for the retry (Django keeps a broken one outside a transaction)
            recorded = _record(prepared, failed, token=token)  # raises when it is still gone
            logger.warning(
                "stored %d photos after reconnecting to the database (%s)", len(outcomes), first_line(exc)
            )
            return recorded
        logger.exception("a batch of %d photos could not be stored; storing one by one", len(outcomes))
    result = Recorded(stored={}, failed={}, skipped=[])
    for outcome, stored_name in prepared:
        try:
            one = _record([(outcome, stored_name)], {}, token=token)
        except DatabaseError as exc:
            if connection_lost():
                raise
            logger.exception("photo %s could not be stored", outcome.photo_id)
            one = _record([], {outcome.photo_id: f"could not be stored: {exc}"}, token=token)
        _merge(result, one)
    _merge(result, _record([], failed, token=token))
    return result


def connection_lost() -> bool:
    """Whether the last database error took the connection with it (a restart, the network).

    Django drops a connection whose rollback failed; psycopg2 marks one the
    server closed. A constraint or data error leaves it open.
    """
    raw = connection.connection
    return raw is None or bool(raw.closed)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (psycopg2's go on with hints over several lines)."""
    return (str(exc).strip().splitlines() or ["no details"])[0]


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
