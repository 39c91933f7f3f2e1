"""The import beyond one machine: one Celery task per photo.

With CELERY_BROKER_URL set, `import_albums` syncs the albums as usual, then
`tasks.enqueue()` queues one `faces.import_photo` task per pending photo and
`wait()` follows them in the database. Any number of `celery -A throwback
worker` processes, on any machines with the same settings, run
`import_photo()`: claim the photo, read or download it, encode it with the
models that worker process loaded once, and store it with the same service
as the in-process import (`services.photos_record`). This module does not
import Celery (tasks.py does, and is loaded only with a broker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

from django.conf import settings

from faces import services
from faces.imports.control import RunControl, RunStopped
from faces.imports.jobs import jobs_for
from faces.imports.summary import ImportSummary
from faces.imports.workers import encode_job
from faces.models import Album, FaceEncoding, Match, Photo
from faces.sources import Source, SourceError
from faces.sources.folder import FolderSource
from thalia import services as website

logger = logging.getLogger(__name__)

POLL_S = 1.0
IDS_PER_QUERY = 5000
MAX_ERRORS = 100


def wait(
    photo_ids: Sequence[int],
    *,
    wait_s: float,
    summary: ImportSummary,
    progress: Callable[[int, int], None] | None,
    control: RunControl | None = None,
) -> None:
    """Poll the photos' status until none is pending or claimed, or none finished for wait_s.

    Fills the summary from what the workers stored: photos done and failed
    (with their errors), their faces and matches, and how many still wait;
    also when the run is stopped meanwhile (`control`'s deadline, a signal).
    """
    total = len(photo_ids)
    finished, changed_at = 0, time.monotonic()
    remaining = total
    try:
        while True:
            if control is not None:
                control.check()
            remaining = _count(photo_ids, status__in=[Photo.Status.PENDING, Photo.Status.CLAIMED])
            now = time.monotonic()
            if total - remaining != finished:
                finished, changed_at = total - remaining, now
                if progress is not None:
                    progress(finished, total)
            if remaining == 0 or now - changed_at >= wait_s:
                break
            time.sleep(POLL_S)
    except RunStopped:
        _fill(photo_ids, remaining=remaining, summary=summary)
        raise
    _fill(photo_ids, remaining=remaining, summary=summary)
    if remaining:
        summary.errors.append(
            f"{remaining} photos still wait for a Celery worker (none finished for {wait_s:.0f} s); "
            "workers encode them when they take them"
        )


def _fill(photo_ids: Sequence[int], *, remaining: int, summary: ImportSummary) -> None:
    summary.photos_queued = remaining
    for ids in _chunks(photo_ids):
        done = list(Photo.objects.filter(pk__in=ids, status=Photo.Status.DONE).values_list("id", flat=True))
        summary.photos_encoded += len(done)
        summary.faces += FaceEncoding.objects.filter(photo_id__in=done).count()
        summary.matches += Match.objects.filter(face__photo_id__in=done).count()
        failed = Photo.objects.filter(pk__in=ids, status=Photo.Status.FAILED).order_by("id")
        summary.photos_failed += failed.count()
        room = max(0, MAX_ERRORS - len(summary.errors))
        summary.errors.extend(
            f"photo {source_id}: {error}"
            for source_id, error in failed.values_list("source_id", "error")[:room]
        )


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), IDS_PER_QUERY):
        yield ids[start : start + IDS_PER_QUERY]


def _count(ids: Sequence[int], **filters: object) -> int:
    return sum(Photo.objects.filter(pk__in=chunk, **filters).count() for chunk in _chunks(ids))


def import_photo(photo_id: int) -> str:
    """Encode and store one photo: the body of the Celery task.

    Returns "done", "failed" or "skipped". Idempotent: only the task that
    claims the pending photo works on it, so a task delivered twice, or run
    twice at once, stores the photo once; the other returns "skipped", as
    does a task for a photo deleted or already done. A website photo's signed
    URLs are refreshed first when stale (a task may wait in the queue for
    hours).
    """
    token = services.claim_token()
    if not services.photo_claim(photo_id=photo_id, token=token):
        return "skipped"
    try:
        photo = Photo.objects.select_related("album").get(pk=photo_id)
        path = ""
        try:
            (job,) = jobs_for(_source(photo.album), [photo_id])
            path = job.path
            result = encode_job(job)
            outcome = services.Outcome(photo_id, result.analysis, result.error, path)
        except SourceError as exc:
            outcome = services.Outcome(photo_id, None, str(exc), path)
        recorded = services.photos_record(outcomes=[outcome], token=token)
    except Photo.DoesNotExist:
        return "skipped"
    finally:
        services.claims_release(token=token)  # a no-op unless storing failed
    if photo_id in recorded.stored:
        return "done"
    return "failed" if photo_id in recorded.failed else "skipped"


_sources: dict[tuple[str, str], Source] = {}


def _source(album: Album) -> Source:
    """The album's source as this worker sees it (one website session per worker process)."""
    if album.source == Album.Source.FOLDER:
        return FolderSource(album.location)
    key = (settings.THALIA_API_URL, settings.THALIA_ACCESS_TOKEN)
    if key not in _sources:
        _sources[key] = website.website_source()
    return _sources[key]
