"""Import history: an ImportRun row per import, with its summary counts and errors.

`import_run_start` records a run when it begins; `import_run_finish`
copies the importer's summary (read through `ImportSummaryLike`, so this
module does not import the importer) when it ends.
"""

from __future__ import annotations

from typing import Protocol

from django.utils import timezone

from faces.models import ImportRun

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
