"""What an evaluation found, as data, JSON-ready dicts and plain-text tables."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Score:
    """Counts over member–photo pairs at one threshold."""

    threshold: float
    members: int = 0
    pairs: int = 0
    positives: int = 0
    hits: int = 0
    false: int = 0

    @property
    def recall(self) -> float | None:
        return self.hits / self.positives if self.positives else None

    @property
    def precision(self) -> float | None:
        return self.hits / (self.hits + self.false) if self.hits + self.false else None

    @property
    def false_per_1000(self) -> float | None:
        return 1000 * self.false / self.pairs if self.pairs else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "recall": self.recall,
            "precision": self.precision,
            "false_per_1000": self.false_per_1000,
        }


@dataclass(frozen=True)
class GroupPhoto:
    photo: str
    identities: str
    expected: int | None
    detected: int
    scored: bool


@dataclass(frozen=True)
class FalseMatch:
    member: str
    photo: str
    identities: str
    distance: float


@dataclass
class Report:
    folders: list[str]
    options: dict[str, Any]
    thresholds: list[float]
    images: int = 0
    photos_encoded: int = 0
    photos_failed: int = 0
    faces: int = 0
    people: int = 0
    members: int = 0
    references: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)
    per_folder: dict[str, list[Score]] = field(default_factory=dict)
    groups: list[GroupPhoto] = field(default_factory=list)
    false_matches: list[FalseMatch] = field(default_factory=list)
    import_seconds: float = 0.0
    import_cpu_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def photos_per_second(self) -> float | None:
        return self.images / self.import_seconds if self.import_seconds else None

    @property
    def cpu_ms_per_photo(self) -> float | None:
        return 1000 * self.import_cpu_seconds / self.images if self.images else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scores"] = [score.as_dict() for score in self.scores]
        data["per_folder"] = {name: [s.as_dict() for s in scores] for name, scores in self.per_folder.items()}
        data["photos_per_second"] = self.photos_per_second
        data["cpu_ms_per_photo"] = self.cpu_ms_per_photo
        return data


def format_report(report: Report, *, default_threshold: float) -> list[str]:
    """The report as plain-text lines: tables per threshold, per folder, group photos."""
    lines = [
        f"Folders: {', '.join(Path(f).name for f in report.folders)}; {report.images} images",
        "Options: " + ", ".join(f"{key}={value}" for key, value in report.options.items()),
        f"Members: {report.members} of {report.people} people enrolled with {report.references} references; "
        f"refused selfies: {_counts(report.rejections)}",
        f"Import: {report.photos_encoded} photos encoded, {report.photos_failed} failed, {report.faces} faces "
        f"in {report.import_seconds:.1f} s ({_fmt(report.photos_per_second, 2)} photos/s, "
        f"{_fmt(report.cpu_ms_per_photo, 0)} ms CPU per photo)",
        "",
    ]
    for error in report.errors[:10]:
        lines.insert(-1, f"  {error}")
    headers = [
        "threshold",
        "members",
        "pairs",
        "positives",
        "hits",
        "recall",
        "false",
        "precision",
        "false/1000",
    ]
    rows = [
        [
            f"{s.threshold:.2f}" + (" *" if s.threshold == default_threshold else ""),
            s.members,
            s.pairs,
            s.positives,
            s.hits,
            _fmt(s.recall),
            s.false,
            _fmt(s.precision),
            _fmt(s.false_per_1000, 2),
        ]
        for s in report.scores
    ]
    lines += ["Recall and false matches per threshold (* the configured threshold)"]
    lines += _table(headers, rows) + [""]
    rows = [
        [
            folder,
            scores[0].members,
            *[f"{_fmt(s.recall)} ({s.hits}/{s.positives}, {s.false} false)" for s in scores],
        ]
        for folder, scores in report.per_folder.items()
    ]
    lines += ["Per folder of the member: recall (hits/positives, false matches)"]
    lines += _table(["folder", "members", *[f"{t:.2f}" for t in report.thresholds]], rows) + [""]
    rows = [
        [
            g.photo,
            g.identities,
            "-" if g.expected is None else g.expected,
            g.detected,
            "yes" if g.scored else "no",
        ]
        for g in report.groups
    ]
    lines += ["Group photos: faces detected vs faces_expected"]
    lines += _table(["photo", "identities", "expected", "detected", "scored"], rows) + [""]
    shown = [m for m in report.false_matches if m.distance <= default_threshold][:10]
    lines += [f"Closest false matches at or below {default_threshold} (up to 10)"]
    lines += _table(
        ["member", "photo", "identities", "distance"],
        [[m.member, m.photo, m.identities, f"{m.distance:.3f}"] for m in shown],
    )
    return lines


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in sorted(counter.items())) or "none"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    cells = [headers, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
