"""Encoding jobs for worker processes: plain data in, plain data out.

Imports no Django code, so a freshly spawned worker only loads the engine
and the HTTP client; the importer does every database write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from faces import engine
from faces.sources import SourceError, folder
from faces.sources.concrexit import download

logger = logging.getLogger(__name__)

MAX_PHOTO_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class EncodeJob:
    """Everything a worker needs for one photo, as plain data."""

    photo_id: int
    source_id: str
    path: str
    url: str
    allowed_origins: tuple[str, ...]
    options: engine.EngineOptions
    timeout_s: float
    retries: int


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
        else:
            data = download(
                job.url,
                allowed_origins=job.allowed_origins,
                max_bytes=MAX_PHOTO_BYTES,
                timeout_s=job.timeout_s,
                retries=job.retries,
            )
        return EncodeResult(job.photo_id, job.source_id, engine.analyse(data, job.options))
    except (SourceError, engine.EngineError) as exc:
        return EncodeResult(job.photo_id, job.source_id, None, str(exc))
    except Exception as exc:  # a bug or a dlib failure must not end the run
        logger.exception("photo %s: unexpected error", job.source_id)
        return EncodeResult(job.photo_id, job.source_id, None, f"unexpected error: {exc.__class__.__name__}")
