"""Import history: an ImportRun row per import, with its summary counts and errors.

`import_run_start` records a run when it begins, with its owner token;
`import_run_beat` keeps its heartbeat; `import_run_finish` copies the
importer's summary (read through `ImportSummaryLike`, so this module does
not import the importer) when it ends. A run killed before it could record
its end (kill -9, out of memory, a power cut, cut off from the database) is
closed as interrupted by the next run (`import_runs_close_interrupted`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from faces.models import ImportRun
from faces.services.claims import claims_release, owner_alive

# The ImportSummary fields an ImportRun keeps.
IMPORT_RUN_COUNTS = (
    "albums",
    "photos_new",
    "photos_changed",
    "photos_unchanged",
    "photos_removed",
    "photos_resumed",
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
    photos_resumed: int
    photos_encoded: int
    photos_failed: int
    faces: int
    matches: int
    errors: list[str]


def import_run_start(*, source: str, location: str, owner: str = "") -> ImportRun:
    """Record that an import run started (finished stays empty until it ends).

    `owner` is the run's claim token ("host:pid:random", services.claim_token).
    """
    now = timezone.now()
    run = ImportRun(started=now, heartbeat=now, source=source, location=location[:1000], owner=owner)
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


def import_run_beat(*, run: ImportRun) -> None:
    """Record that a run still lives (RunControl calls it every minute or so)."""
    ImportRun.objects.filter(pk=run.pk).update(heartbeat=timezone.now())


def import_runs_close_interrupted(*, by: ImportRun, now: dt.datetime | None = None) -> list[ImportRun]:
    """Close the rows of runs that ended without recording it; returns them.

    A row left open belongs to a dead run when its owner ran on this host in
    a process that is gone (or that has this process's pid: a restarted
    container), or when its heartbeat is older than
    THROWBACK_CLAIM_TIMEOUT_SECONDS (a live run beats every minute; this
    covers other hosts and a pid taken over by another program). Rows from
    before runs had owners count by their start. The photos such a run
    still claimed are handed back.
    """
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.THROWBACK_CLAIM_TIMEOUT_SECONDS)
    closed = []
    for run in ImportRun.objects.filter(finished__isnull=True).exclude(pk=by.pk).order_by("started"):
        last_sign = run.heartbeat or run.started
        if last_sign >= stale and (not run.owner or owner_alive(run.owner, me=by.owner)):
            continue
        released = claims_release(token=run.owner) if run.owner else 0
        host, pid = _host_and_pid(run.owner)
        process = f"its process ({host}, pid {pid})" if host else "it"
        run.finished = last_sign
        run.error = (
            f"interrupted: {process} ended without recording its end (killed, out of memory, a power cut, "
            f"or cut off from the database); noticed by run {by.pk}, which handed back the {released} "
            f"photo{'' if released == 1 else 's'} it still claimed. What it stored is kept; its counts are unknown."
        )
        # Only these fields: the run may still write its own end (it was alive after all).
        ImportRun.objects.filter(pk=run.pk, finished__isnull=True).update(
            finished=run.finished, error=run.error
        )
        closed.append(run)
    return closed


def import_runs_by_owner(owners: Iterable[str]) -> dict[str, ImportRun]:
    """The runs that own these claim tokens (a Celery worker's tokens have none)."""
    tokens = [owner for owner in owners if owner]
    return {run.owner: run for run in ImportRun.objects.filter(owner__in=tokens)}


def _host_and_pid(owner: str) -> tuple[str, str]:
    host, _, rest = owner.partition(":")
    return host, rest.partition(":")[0]
