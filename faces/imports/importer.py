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
from django.db import DatabaseError
from django.utils import timezone

from faces import services
from faces.imports import distributed
from faces.imports.albums import printable, sync_albums
from faces.imports.control import RunControl, RunStopped
from faces.imports.jobs import jobs_for
from faces.imports.summary import ImportSummary
from faces.imports.workers import EncodeJob, EncodeResult, WorkerPool
from faces.models import Photo
from faces.sources import Source

__all__ = ["DEFAULT_WAIT_S", "default_workers", "printable", "run_import"]

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
    control: RunControl | None = None,
    allow_missing: bool = False,
) -> ImportSummary:
    """Import albums from a source and encode every pending photo.

    Idempotent: unchanged photos are skipped, interrupted runs resume from
    the pending photos (claims of a killed run are recovered first; photos
    another live run claims are counted as taken and named in the errors).
    Per-album and per-photo errors are collected in the summary; only
    failing to list the source's albums raises SourceError (HidingRefused
    when a full run would mark too many albums missing: see albums.py, and
    `allow_missing`). `control` is the run's token, deadline and heartbeat
    (default: a token, no deadline); a run stopped by it or by a signal
    raises RunStopped with the summary so far, its claims handed back.

    With CELERY_BROKER_URL set, the pending photos are queued for Celery
    workers and `workers` is unused; the run then waits until every queued
    photo is done or failed, or until none has finished for `wait_s` seconds
    (None: do not wait). `encode` replaces `workers.encode_job` in the worker
    processes (a module-level function; tests use it to crash a worker).
    """
    started = time.monotonic()
    control = control or RunControl(token=services.claim_token())
    summary = ImportSummary()
    # Start the encoding workers first: they load dlib's models (seconds)
    # while this process lists the source and syncs the albums.
    fresh = (workers, encode) not in _pools
    pool = None if settings.CELERY_BROKER_URL else _pool(workers, encode)
    try:
        album_pks = sync_albums(
            source,
            album_id=album_id,
            since=since,
            summary=summary,
            control=control,
            allow_missing=allow_missing,
        )
        recovered = services.claims_recover()
        if recovered:
            logger.warning("%d photos claimed by runs that stopped are pending again", recovered)
        _name_holders(album_pks, summary)

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
                distributed.wait(
                    photo_ids, wait_s=wait_s, summary=summary, progress=progress, control=control
                )
        elif photo_ids:
            _encode(source, photo_ids, pool=pool, summary=summary, progress=progress, control=control)
        elif fresh:
            _pool_stop()  # nothing to encode: do not wait at exit for the models to load
    except BaseException as exc:
        if pool is not None and fresh:
            _pool_stop()
        if isinstance(exc, RunStopped):
            summary.seconds = time.monotonic() - started
            exc.summary = summary
        raise
    if summary.photos_encoded:
        # The collection grew: references' limits and learned references follow (issue 14).
        services.references_refresh()
    summary.seconds = time.monotonic() - started
    return summary


def _name_holders(album_ids: list[int], summary: ImportSummary) -> None:
    """Count the photos of these albums that other live processes claim, and say who holds them."""
    held = services.claims_held(album_ids=album_ids)
    runs = services.import_runs_by_owner(holder.owner for holder in held)
    for holder in held:
        summary.photos_skipped += holder.photos
        host, _, rest = holder.owner.partition(":")
        run = runs.get(holder.owner)
        who = f"run {run.pk}" if run is not None else f"process {rest.partition(':')[0]} (a Celery worker?)"
        since = f" since {timezone.localtime(holder.since):%Y-%m-%d %H:%M %Z}" if holder.since else ""
        photos = f"{holder.photos} photo{'' if holder.photos == 1 else 's'}"
        summary.errors.append(f"{photos} claimed by {who} on host {host}{since}: not encoded by this run")


def _encode(
    source: Source,
    photo_ids: list[int],
    *,
    pool: WorkerPool,
    summary: ImportSummary,
    progress: Callable[[int, int], None] | None,
    control: RunControl,
) -> None:
    """Encode photos in worker processes, storing the results in batches.

    Photos are claimed and turned into jobs a chunk at a time (so signed URLs
    are fresh when used). WINDOW_PER_WORKER jobs per worker are kept queued,
    so no worker waits while this process writes a batch; results are taken
    in the order they finish. When a worker dies, the jobs it took down with
    it are run again one at a time, so only a photo that kills its worker
    again is failed. When the run is stopped (its deadline, a signal), the
    results already in are stored first. Photos still claimed when the run
    ends (an error, ^C, SIGTERM) are handed back as pending.
    """
    if not photo_ids:
        return
    token = control.token
    workers = max(1, min(pool.workers, len(photo_ids)))
    feed = _Feed(source, photo_ids, token=token, chunk=workers * CLAIM_PER_WORKER)
    batch = _Batch(token=token, summary=summary, progress=progress, total=len(photo_ids))
    in_flight: dict[Future[EncodeResult], EncodeJob] = {}
    suspects: deque[EncodeJob] = deque()  # in flight when a worker died: retried alone
    try:
        try:
            _encode_loop(pool, feed, batch, in_flight, suspects, workers=workers, control=control)
        except RunStopped:
            batch.flush()  # what is already encoded is kept
            raise
        finally:
            summary.photos_skipped += feed.skipped
        batch.flush()
    except BaseException:
        _pools.clear()
        pool.stop()  # ends the workers now, their photos unstored (^C, a database failure)
        # Hand the photos back; when the database is what failed, this fails
        # too, and the error on its way says more (the next run recovers them).
        with contextlib.suppress(DatabaseError):
            services.claims_release(token=token)
        raise
    services.claims_release(token=token)  # a no-op unless storing failed


def _encode_loop(
    pool: WorkerPool,
    feed: _Feed,
    batch: _Batch,
    in_flight: dict[Future[EncodeResult], EncodeJob],
    suspects: deque[EncodeJob],
    *,
    workers: int,
    control: RunControl,
) -> None:
    """Keep the workers fed and store their results until every photo is done."""
    isolated = False
    while True:
        control.check()
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
        due = batch.due_in()
        timeout = control.wait_s() if due is None else min(due, control.wait_s())
        finished, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
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
                    logger.error("an encoding worker died; retrying its %d photos one by one", len(in_flight))
                    suspects.extend(sorted(in_flight.values(), key=lambda job: job.photo_id))
                in_flight.clear()
                pool.restart()
                break
        if batch.due():
            batch.flush()


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


def workers_stop() -> None:
    """Shut down the encoding workers kept for the next run and wait for them to exit.

    Once exited (and joined) their CPU time counts among this process's
    children (`resource.RUSAGE_CHILDREN`), which `evaluate` reports.
    """
    for pool in _pools.values():
        pool.shutdown()
    _pools.clear()


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
