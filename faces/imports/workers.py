"""Encoding jobs for worker processes: plain data in, plain data out.

Imports no Django code, so a freshly spawned worker only loads the engine
(and, for a website photo, the HTTP client its job's `fetch` names); the
importer does every database write. `WorkerPool` runs the jobs in spawned
processes that load dlib's models once each.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from faces import engine
from faces.sources import MAX_PHOTO_BYTES, SourceError, folder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodeJob:
    """Everything a worker needs for one photo, as plain data.

    A folder photo is read from `path`; any other is downloaded by `fetch`,
    a picklable call of a module-level function (the website's is made by
    `thalia.services.photo_fetcher`) that raises SourceError.
    """

    photo_id: int
    source_id: str
    path: str
    fetch: Callable[[], bytes] | None
    options: engine.EngineOptions


@dataclass(frozen=True)
class EncodeResult:
    photo_id: int
    source_id: str
    analysis: engine.Analysis | None
    error: str = ""


def encode_job(job: EncodeJob) -> EncodeResult:
    """Read or download one photo and encode its faces (runs in a worker).

    Never raises: every failure becomes an EncodeResult with an error.
    """
    try:
        if job.path:
            data = folder.read_file(job.path, max_bytes=MAX_PHOTO_BYTES)
        elif job.fetch is not None:
            data = job.fetch()
        else:
            raise SourceError("no file and no way to download it", permanent=True)
        return EncodeResult(job.photo_id, job.source_id, engine.analyse(data, job.options))
    except (SourceError, engine.EngineError) as exc:
        return EncodeResult(job.photo_id, job.source_id, None, str(exc))
    except Exception as exc:  # a bug or a dlib failure must not end the run
        logger.exception("photo %s: unexpected error", job.source_id)
        return EncodeResult(job.photo_id, job.source_id, None, f"unexpected error: {exc.__class__.__name__}")


PARENT_CHECK_S = 1.0


def worker_ready() -> int:
    """A no-op job: submitting one per worker makes the pool start them now."""
    return os.getpid()


def worker_init(parent_pid: int) -> None:
    """Start of a worker process: load dlib's models, and leave with the parent.

    A spawned worker does not notice its parent's death by itself (it holds
    its own end of the job queue), so after a `kill -9` of the import it would
    wait forever; a daemon thread ends it within a second instead.
    """
    engine.warm_up()

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class WorkerPool:
    """Spawned encoding processes, restarted when one dies.

    Fresh interpreters (spawn), not forks: a forked child would share the
    importer's database connection. When a worker dies (out of memory, a
    crash in dlib), every job in flight fails with BrokenProcessPool; the
    caller decides what to retry and calls `restart()`.
    """

    def __init__(self, workers: int, *, encode: Callable[[EncodeJob], EncodeResult] | None = None) -> None:
        self.workers = workers
        self.encode = encode or encode_job  # module-level, so a spawned process can import it
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_init,
            initargs=(os.getpid(),),
        )

    def start(self) -> None:
        """Spawn every worker now, so they load dlib's models while the caller does other work.

        ProcessPoolExecutor otherwise spawns a worker per submitted job, the
        first one only when the first photo is ready to be encoded.
        """
        for _ in range(self.workers):
            self.executor.submit(worker_ready)

    def submit(self, job: EncodeJob) -> Future[EncodeResult]:
        try:
            return self.executor.submit(self.encode, job)
        except BrokenProcessPool:
            self.restart()
            return self.executor.submit(self.encode, job)

    def restart(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._start()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """End the workers at once, even while they still load the models (nothing to encode)."""
        # Without this, the interpreter's exit would wait for each worker to
        # finish loading the models (seconds) before it could be told to stop.
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
