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
    photos_encoded: int = 0
    photos_failed: int = 0
    photos_skipped: int = 0  # claimed by another run (or deleted) meanwhile
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
        return (
            f"Imported {self.albums} albums: {self.photos_new} new, {self.photos_changed} changed or retried, "
            f"{self.photos_unchanged} unchanged, {self.photos_removed} removed photos; "
            f"{self.photos_encoded} encoded, {self.photos_failed} failed{others}; "
            f"{self.faces} faces, {self.matches} matches in {self.seconds:.1f} s"
        )
