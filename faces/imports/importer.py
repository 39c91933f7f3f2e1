"""The import run: list albums at a source, encode pending photos, store them.

Encoding runs in spawned worker processes (one per core by default, see
workers.py) that each load dlib's models once and receive plain jobs;
they are started before the source is listed, so the models load meanwhile.
Only this process writes to the database, a batch of results per
transaction, while the workers go on encoding the jobs queued ahead (so
with N workers, this process may use an N+1th core for its database work).
Photos are claimed (see services.photos_claim) a chunk at a time, so two
runs never encode the same photo and signed URLs are refreshed between
chunks on long runs. With CELERY_BROKER_URL set, the photos are
queued for Celery workers instead (tasks.py, distributed.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError

from faces import services
from faces.imports import distributed
from faces.imports.jobs import jobs_for
from faces.imports.summary import ImportSummary
from faces.imports.workers import EncodeJob, EncodeResult, WorkerPool
from faces.models import Album, Photo
from faces.sources import DatesUnavailable, Source, SourceAlbum, SourceError

logger = logging.getLogger(__name__)

# Jobs queued per worker: enough that none idles while this process stores a batch.
WINDOW_PER_WORKER = 4
# Photos claimed (and their signed URLs refreshed) at a time, per worker.
CLAIM_PER_WORKER = 8
# Results stored per transaction: at most this many, at least this often.
BATCH_PHOTOS = 50
BATCH_SECONDS = 1.0


# Celery: stop waiting when no queued photo has finished for this long.
DEFAULT_WAIT_S = 600.0


def default_workers() -> int:
    return settings.THROWBACK_IMPORT_WORKERS or os.cpu_count() or 1


def run_import(
    source: Source,
    *,
    workers: int,
    album_id: str | None = None,
    since: dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
    wait_s: float | None = DEFAULT_WAIT_S,
    encode: Callable[[EncodeJob], EncodeResult] | None = None,
) -> ImportSummary:
    """Import albums from a source and encode every pending photo.

    Idempotent: unchanged photos are skipped, interrupted runs resume from
    the pending photos (claims of a killed run are recovered first). Per-album
    and per-photo errors are collected in the summary; only failing to list
    the source's albums raises SourceError.

    With CELERY_BROKER_URL set, the pending photos are queued for Celery
    workers and `workers` is unused; the run then waits until every queued
    photo is done or failed, or until none has finished for `wait_s` seconds
    (None: do not wait). `encode` replaces `workers.encode_job` in the worker
    processes (a module-level function; tests use it to crash a worker).
    """
    started = time.monotonic()
    summary = ImportSummary()
    # Start the encoding workers first: they load dlib's models (seconds)
    # while this process lists the source and syncs the albums.
    fresh = (workers, encode) not in _pools
    pool = None if settings.CELERY_BROKER_URL else _pool(workers, encode)
    try:
        album_pks = _sync_albums(source, album_id=album_id, since=since, summary=summary)
        recovered = services.claims_recover()
        if recovered:
            logger.warning("%d photos claimed by runs that stopped are pending again", recovered)

        # Only albums listed by this run: pending photos of another folder, or of
        # albums left out by --album/--since, wait for a run that lists them.
        pending = Photo.objects.filter(album_id__in=album_pks, status=Photo.Status.PENDING)
        photo_ids = list(pending.order_by("album_id", "id").values_list("id", flat=True))
        if pool is None:
            from faces.imports.tasks import enqueue  # imports Celery: only with a broker

            enqueue(photo_ids)
            if wait_s is None:
                summary.photos_queued = len(photo_ids)
            else:
                distributed.wait(photo_ids, wait_s=wait_s, summary=summary, progress=progress)
        elif photo_ids:
            _encode(source, photo_ids, pool=pool, summary=summary, progress=progress)
        elif fresh:
            _pool_stop()  # nothing to encode: do not wait at exit for the models to load
    except BaseException:
        if pool is not None and fresh:
            _pool_stop()
        raise
    summary.seconds = time.monotonic() - started
    return summary


def _sync_albums(
    source: Source,
    *,
    album_id: str | None,
    since: dt.date | None,
    summary: ImportSummary,
) -> list[int]:
    listed: list[SourceAlbum] = []
    for remote in source.albums():
        if album_id is not None and remote.source_id != album_id:
            continue
        listed.append(remote)
    if album_id is not None and not listed:
        raise SourceError(f"no album {album_id!r} at the source", permanent=True)

    synced = []
    dates = _Dates(source, summary)
    for remote in listed:
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
        synced.append(result.album.pk)
        summary.albums += 1
        summary.photos_new += result.new
        summary.photos_changed += result.changed
        summary.photos_unchanged += result.unchanged
        summary.photos_removed += result.removed
    if album_id is None and since is None:
        # Albums this location no longer lists are kept but not shown; albums
        # imported from another folder are not this run's business.
        listed_ids = {printable(remote.source_id) for remote in listed}
        Album.objects.filter(source=source.kind, location=source.location).exclude(
            source_id__in=listed_ids
        ).update(missing=True)
    return synced


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


def _encode(
    source: Source,
    photo_ids: list[int],
    *,
    pool: WorkerPool,
    summary: ImportSummary,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Encode photos in worker processes, storing the results in batches.

    Photos are claimed and turned into jobs a chunk at a time (so signed URLs
    are fresh when used). WINDOW_PER_WORKER jobs per worker are kept queued,
    so no worker waits while this process writes a batch; results are taken
    in the order they finish. When a worker dies, the jobs it took down with
    it are run again one at a time, so only a photo that kills its worker
    again is failed. Photos still claimed when the run ends (an error, ^C)
    are handed back as pending.
    """
    if not photo_ids:
        return
    token = services.claim_token()
    workers = max(1, min(pool.workers, len(photo_ids)))
    feed = _Feed(source, photo_ids, token=token, chunk=workers * CLAIM_PER_WORKER)
    batch = _Batch(token=token, summary=summary, progress=progress, total=len(photo_ids))
    in_flight: dict[Future[EncodeResult], EncodeJob] = {}
    suspects: deque[EncodeJob] = deque()  # in flight when a worker died: retried alone
    isolated = False
    try:
        while True:
            if not in_flight:
                isolated = False
                if suspects:
                    suspect = suspects.popleft()
                    in_flight[pool.submit(suspect)] = suspect
                    isolated = True
            if not isolated:
                while len(in_flight) < workers * WINDOW_PER_WORKER and (new := feed.next()) is not None:
                    in_flight[pool.submit(new)] = new
            if not in_flight:
                break
            finished, _ = wait(in_flight, timeout=batch.due_in(), return_when=FIRST_COMPLETED)
            for future in finished:
                if future not in in_flight:
                    continue  # already handled with its pool's death
                try:
                    batch.add(future.result(), in_flight.pop(future))
                except BrokenProcessPool:
                    if isolated:
                        (job,) = in_flight.values()
                        logger.error("photo %s stopped its encoding worker twice", job.source_id)
                        batch.add(EncodeResult(job.photo_id, job.source_id, None, WORKER_DIED), job)
                    else:
                        logger.error(
                            "an encoding worker died; retrying its %d photos one by one", len(in_flight)
                        )
                        suspects.extend(sorted(in_flight.values(), key=lambda job: job.photo_id))
                    in_flight.clear()
                    pool.restart()
                    break
            if batch.due():
                batch.flush()
        batch.flush()
        summary.photos_skipped += feed.skipped
    except BaseException:
        _pools.clear()
        pool.stop()  # ends the workers now, their photos unstored (^C, a database failure)
        # Hand the photos back; when the database is what failed, this fails
        # too, and the error on its way says more (the next run recovers them).
        with contextlib.suppress(DatabaseError):
            services.claims_release(token=token)
        raise
    services.claims_release(token=token)  # a no-op unless storing failed


# The pool of the last run, kept for the next run in this process (tests,
# make run) so that its workers need not load dlib's models again.
_pools: dict[tuple[int, Callable[[EncodeJob], EncodeResult] | None], WorkerPool] = {}


def _pool(workers: int, encode: Callable[[EncodeJob], EncodeResult] | None) -> WorkerPool:
    key = (workers, encode)
    if key not in _pools:
        for old in _pools.values():
            old.shutdown()
        _pools.clear()
        _pools[key] = WorkerPool(workers, encode=encode)
        _pools[key].start()
    return _pools[key]


def _pool_stop() -> None:
    for pool in _pools.values():
        pool.stop()
    _pools.clear()


WORKER_DIED = "the encoding worker stopped on this photo (a crash or out of memory); retried on the next run"


class _Feed:
    """Claims pending photos a chunk at a time and hands out their jobs."""

    def __init__(self, source: Source, photo_ids: list[int], *, token: str, chunk: int) -> None:
        self.source, self.token, self.chunk = source, token, chunk
        self.remaining = deque(photo_ids)
        self.jobs: deque[EncodeJob] = deque()
        self.skipped = 0  # claimed by another run meanwhile, or gone

    def next(self) -> EncodeJob | None:
        while not self.jobs and self.remaining:
            ids = [self.remaining.popleft() for _ in range(min(self.chunk, len(self.remaining)))]
            claimed = services.photos_claim(photo_ids=ids, token=self.token)
            self.skipped += len(ids) - len(claimed)
            self.jobs.extend(jobs_for(self.source, claimed))
        return self.jobs.popleft() if self.jobs else None


class _Batch:
    """Results waiting to be stored together (see services.photos_record)."""

    def __init__(
        self,
        *,
        token: str,
        summary: ImportSummary,
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        self.token, self.summary, self.progress, self.total = token, summary, progress, total
        self.outcomes: list[services.Outcome] = []
        self.names: dict[int, str] = {}
        self.first_at = 0.0
        self.done = 0

    def add(self, result: EncodeResult, job: EncodeJob) -> None:
        if not self.outcomes:
            self.first_at = time.monotonic()
        self.outcomes.append(services.Outcome(result.photo_id, result.analysis, result.error, job.path))
        self.names[result.photo_id] = result.source_id

    def due_in(self) -> float | None:
        """Seconds until the waiting results must be stored (None: nothing waits)."""
        if not self.outcomes:
            return None
        return max(0.0, self.first_at + BATCH_SECONDS - time.monotonic())

    def due(self) -> bool:
        return len(self.outcomes) >= BATCH_PHOTOS or self.due_in() == 0.0

    def flush(self) -> None:
        if not self.outcomes:
            return
        outcomes, self.outcomes = self.outcomes, []
        recorded = services.photos_record(outcomes=outcomes, token=self.token)
        summary = self.summary
        for faces, matches in recorded.stored.values():
            summary.photos_encoded += 1
            summary.faces += faces
            summary.matches += matches
        for photo_id, error in recorded.failed.items():
            summary.photos_failed += 1
            summary.errors.append(f"photo {self.names[photo_id]}: {error}")
        summary.photos_skipped += len(recorded.skipped)
        for _ in outcomes:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total)
        self.names.clear()
