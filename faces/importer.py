"""The import run: list albums at a source, encode pending photos, store them.

Encoding runs in worker processes (one per core by default, see
faces/workers.py) that each load dlib's models once and receive plain jobs;
only this process writes to the database. Photos are handed out in chunks so signed URLs can be refreshed
between chunks on long runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError

from faces import engine, services
from faces.models import Album, Photo
from faces.sources import SourceAlbum, SourceError
from faces.sources.concrexit import ConcrexitSource
from faces.sources.folder import FolderSource
from faces.workers import EncodeJob, EncodeResult, encode_job

logger = logging.getLogger(__name__)

JOBS_PER_WORKER = 8


@dataclass
class ImportSummary:
    albums: int = 0
    photos_new: int = 0
    photos_changed: int = 0
    photos_unchanged: int = 0
    photos_removed: int = 0
    photos_encoded: int = 0
    photos_failed: int = 0
    faces: int = 0
    matches: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"Imported {self.albums} albums: {self.photos_new} new, {self.photos_changed} changed or retried, "
            f"{self.photos_unchanged} unchanged, {self.photos_removed} removed photos; "
            f"{self.photos_encoded} encoded, {self.photos_failed} failed; "
            f"{self.faces} faces, {self.matches} matches in {self.seconds:.1f} s"
        )


def default_workers() -> int:
    return settings.THROWBACK_IMPORT_WORKERS or os.cpu_count() or 1


def run_import(
    source: ConcrexitSource | FolderSource,
    *,
    workers: int,
    album_id: str | None = None,
    since: dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import albums from a source and encode every pending photo.

    Idempotent: unchanged photos are skipped, interrupted runs resume from
    the pending photos. Per-album and per-photo errors are collected in the
    summary; only failing to list the source's albums raises SourceError.
    """
    started = time.monotonic()
    summary = ImportSummary()
    album_pks = _sync_albums(source, album_id=album_id, since=since, summary=summary)

    # Only albums listed by this run: pending photos of another folder, or of
    # albums left out by --album/--since, wait for a run that lists them.
    pending = Photo.objects.filter(album_id__in=album_pks, status=Photo.Status.PENDING)
    photo_ids = list(pending.order_by("album_id", "id").values_list("id", flat=True))
    _encode(source, photo_ids, workers=workers, summary=summary, progress=progress)
    summary.seconds = time.monotonic() - started
    return summary


def _sync_albums(
    source: ConcrexitSource | FolderSource,
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
    for remote in listed:
        remote = _with_date(source, remote)
        if since is not None and remote.date is not None and remote.date < since:
            continue
        try:
            listing = source.photos(remote)
            result = services.album_sync(
                source=source.kind, location=location_of(source), remote=remote, listing=listing
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
        Album.objects.filter(source=source.kind, location=location_of(source)).exclude(
            source_id__in=listed_ids
        ).update(missing=True)
    return synced


def location_of(source: ConcrexitSource | FolderSource) -> str:
    return str(source.root) if isinstance(source, FolderSource) else source.base_url


def printable(text: str) -> str:
    """Text safe to store and print: undecodable bytes from file names replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _with_date(source: ConcrexitSource | FolderSource, remote: SourceAlbum) -> SourceAlbum:
    """Fill the album's date from its event, once (the API has no album date)."""
    if not isinstance(source, ConcrexitSource) or remote.event_id is None:
        return remote
    known = (
        Album.objects.filter(source=source.kind, source_id=remote.source_id)
        .values_list("date", flat=True)
        .first()
    )
    date = known or source.event_date(remote.event_id)
    return SourceAlbum(remote.source_id, remote.title, date, remote.event_id)


def _encode(
    source: ConcrexitSource | FolderSource,
    photo_ids: list[int],
    *,
    workers: int,
    summary: ImportSummary,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Encode photos in chunks, storing each result as it arrives.

    Jobs are built one chunk ahead of the workers (so signed URLs are fresh
    when used) and the workers are never idle between chunks.
    """
    if not photo_ids:
        return
    total, done = len(photo_ids), 0
    workers = max(1, min(workers, total))
    chunk = workers * JOBS_PER_WORKER
    chunks = [photo_ids[i : i + chunk] for i in range(0, total, chunk)]

    def store(result: EncodeResult, job: EncodeJob) -> None:
        nonlocal done
        _store(result, path=job.path, summary=summary)
        done += 1
        if progress is not None:
            progress(done, total)

    if workers == 1:
        for ids in chunks:
            for job in _jobs(source, ids):
                store(encode_job(job), job)
        return

    pool = _Pool(workers)
    in_flight: dict[Future[EncodeResult], EncodeJob] = {}
    try:
        for index, ids in enumerate(chunks):
            for job in _jobs(source, ids):
                in_flight[pool.submit(job)] = job
            keep = chunk if index + 1 < len(chunks) else 0
            while len(in_flight) > keep:
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = in_flight.pop(future)
                    store(pool.result(future, job), job)
    finally:
        pool.shutdown()


class _Pool:
    """Worker processes that survive a worker's death.

    Fresh interpreters (spawn), not forks: a forked child would share this
    process's database connection. Each loads dlib's models once. When a
    worker dies (out of memory, a crash in dlib), the jobs in flight are
    recorded as failed, to be retried on the next run, and new workers start.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=engine.warm_up
        )

    def submit(self, job: EncodeJob) -> Future[EncodeResult]:
        try:
            return self.executor.submit(encode_job, job)
        except BrokenProcessPool:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._start()
            return self.executor.submit(encode_job, job)

    def result(self, future: Future[EncodeResult], job: EncodeJob) -> EncodeResult:
        try:
            return future.result()
        except BrokenProcessPool:
            logger.error("an encoding worker died while photo %s was in flight", job.source_id)
            return EncodeResult(
                job.photo_id,
                job.source_id,
                None,
                "the encoding worker stopped (out of memory?); retried on the next run",
            )

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _jobs(source: ConcrexitSource | FolderSource, photo_ids: list[int]) -> list[EncodeJob]:
    photos = list(Photo.objects.filter(pk__in=photo_ids).select_related("album").order_by("id"))
    if isinstance(source, ConcrexitSource):
        services.photo_urls_refresh(photos, source=source)
    options = services.engine_options()
    jobs = []
    for photo in photos:
        variant = settings.THALIA_ENCODE_VARIANT
        url = photo.remote_urls.get(variant) or photo.remote_urls.get("full", "")
        path = ""
        if isinstance(source, FolderSource):
            path = str(source.root / photo.origin)
        jobs.append(
            EncodeJob(
                photo_id=photo.pk,
                source_id=photo.source_id,
                path=path,
                url=url,
                allowed_origins=source.file_origins if isinstance(source, ConcrexitSource) else (),
                options=options,
                timeout_s=settings.THALIA_TIMEOUT_SECONDS,
                retries=settings.THALIA_RETRIES,
            )
        )
    return jobs


def _store(result: EncodeResult, *, path: str, summary: ImportSummary) -> None:
    if result.analysis is None:
        _fail(result, result.error, summary=summary)
        return
    try:
        faces, matches = services.photo_store(photo_id=result.photo_id, analysis=result.analysis, path=path)
    except Photo.DoesNotExist:
        return  # deleted meanwhile (album re-synced by another run)
    except (DatabaseError, OSError) as exc:
        # Storage or database trouble with this photo: record it, go on.
        logger.exception("photo %s could not be stored", result.source_id)
        _fail(result, f"could not be stored: {exc}", summary=summary)
        return
    summary.photos_encoded += 1
    summary.faces += faces
    summary.matches += matches


def _fail(result: EncodeResult, error: str, *, summary: ImportSummary) -> None:
    """Record a photo's failure (retried on the next run) and count it."""
    services.photo_fail(photo_id=result.photo_id, error=error)
    summary.photos_failed += 1
    summary.errors.append(f"photo {result.source_id}: {error}")
