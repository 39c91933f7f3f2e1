"""What an import run did: counts and errors, shown by `import_albums` and kept as an ImportRun."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportSummary:
    albums: int = 0
    photos_new: int = 0
    photos_changed: int = 0
    photos_unchanged: int = 0
    photos_removed: int = 0
    # Pending or claimed before this run began, unchanged at the source: left by
    # an earlier run that stopped, marked for re-encoding in the admin, or held
    # by a run that still runs (then also counted in photos_skipped and named
    # in errors).
    photos_resumed: int = 0
    photos_encoded: int = 0
    photos_failed: int = 0
    photos_skipped: int = 0  # claimed by another run (or deleted), before or during this one
    photos_queued: int = 0  # Celery: still waiting for a worker when the command stopped waiting
    faces: int = 0
    matches: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        others = ""
        if self.photos_skipped:
            others += f", {self.photos_skipped} taken by another run"
        if self.photos_queued:
            others += f", {self.photos_queued} still queued"
        # Every photo to encode is in one count on each side: new + changed or
        # retried + already pending = encoded + failed + taken by another run
        # + still queued (when no album failed to sync).
        resumed = f", {self.photos_resumed} already pending" if self.photos_resumed else ""
        return (
            f"Imported {self.albums} albums: {self.photos_new} new, {self.photos_changed} changed or retried, "
            f"{self.photos_unchanged} unchanged, {self.photos_removed} removed photos{resumed}; "
            f"{self.photos_encoded} encoded, {self.photos_failed} failed{others}; "
            f"{self.faces} faces, {self.matches} matches in {self.seconds:.1f} s"
        )
