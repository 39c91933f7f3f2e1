"""What an evaluation found, as data, JSON-ready dicts and plain-text tables."""

from __future__ import annotations

from collections.abc import Sequence
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
class StepResult:
    """One step of the rule, scored at each value of its swept setting."""

    name: str
    setting: str
    values: list[float]
    scores: list[Score] = field(default_factory=list)
    # Per value: member → [pairs, positives, hits, false] (for cross-validation).
    per_member: list[dict[str, list[int]]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "scores": [s.as_dict() for s in self.scores]}


@dataclass
class CrossValidation:
    """A step's swept value chosen on the other folds of members, scored on each fold."""

    name: str
    setting: str
    chosen: list[float] = field(default_factory=list)
    fold_recall: list[float | None] = field(default_factory=list)
    fold_false_per_1000: list[float | None] = field(default_factory=list)
    total: Score = field(default_factory=lambda: Score(threshold=0.0))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total.as_dict()}


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
    # The matching rule (issue 14): its settings, each step swept and cross-validated,
    # the configured rule as is, and after honest answers to "Is this you?".
    rule: dict[str, Any] = field(default_factory=dict)
    scales: list[float] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    cv: list[CrossValidation] = field(default_factory=list)
    configured: Score | None = None
    answered: Score | None = None
    questions: float | None = None
    learned_per_member: float = 0.0

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
        data["steps"] = [step.as_dict() for step in self.steps]
        data["cv"] = [cv.as_dict() for cv in self.cv]
        data["configured"] = self.configured.as_dict() if self.configured else None
        data["answered"] = self.answered.as_dict() if self.answered else None
        data["photos_per_second"] = self.photos_per_second
        data["cpu_ms_per_photo"] = self.cpu_ms_per_photo
        return data


def format_report(report: Report) -> list[str]:
    """The report as plain-text lines: each step per swept value, cross-validation, the configured rule."""
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
    lines += [
        "Matching rule: " + ", ".join(f"{k.removeprefix('THROWBACK_')}={v}" for k, v in report.rule.items()),
        "",
    ]
    for step in report.steps:
        lines += [f"Step: {step.name} (swept: {step.setting.removeprefix('THROWBACK_')})"]
        lines += _table(SCORE_HEADERS, [_score_row(f"{s.threshold:g}", s) for s in step.scores]) + [""]
    if report.cv:
        lines += [
            f"Cross-validated over folds of members (value chosen on the other folds at <= {0.1} false per 1,000)"
        ]
        rows: list[list[object]] = [
            [
                cv.name,
                _fmt(cv.total.recall),
                _fmt(cv.total.false_per_1000, 2),
                f"{_fmt(_min(cv.fold_recall))}-{_fmt(_max(cv.fold_recall))}",
                f"{_fmt(_min(cv.fold_false_per_1000), 2)}-{_fmt(_max(cv.fold_false_per_1000), 2)}",
                ", ".join(f"{v:g}" for v in cv.chosen),
            ]
            for cv in report.cv
        ]
        lines += _table(
            ["step", "recall", "false/1000", "fold recall", "fold false/1000", "chosen"], rows
        ) + [""]
    if report.configured:
        configured_rows = [_score_row("as configured", report.configured)]
        if report.answered:
            configured_rows.append(_score_row("after honest answers", report.answered))
        lines += [
            f"The configured rule: {report.learned_per_member:.1f} learned references per member"
            + ("" if report.questions is None else f"; {report.questions:.1f} questions per member answered")
        ]
        lines += _table(["", *SCORE_HEADERS[1:]], configured_rows) + [""]
    folder_rows = [
        [
            folder,
            scores[0].members,
            f"{_fmt(scores[0].recall)} ({scores[0].hits}/{scores[0].positives}, {scores[0].false} false)",
        ]
        for folder, scores in report.per_folder.items()
    ]
    lines += ["Per folder of the member, the configured rule: recall (hits/positives, false matches)"]
    lines += _table(["folder", "members", "configured"], folder_rows) + [""]
    group_rows = [
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
    lines += _table(["photo", "identities", "expected", "detected", "scored"], group_rows) + [""]
    shown = report.false_matches[:10]
    lines += ["Closest false matches of the configured rule (up to 10)"]
    lines += _table(
        ["member", "photo", "identities", "distance"],
        [[m.member, m.photo, m.identities, f"{m.distance:.3f}"] for m in shown],
    )
    return lines


SCORE_HEADERS = [
    "value",
    "members",
    "pairs",
    "positives",
    "hits",
    "recall",
    "false",
    "precision",
    "false/1000",
]


def _score_row(label: str, s: Score) -> list[object]:
    return [
        label,
        s.members,
        s.pairs,
        s.positives,
        s.hits,
        _fmt(s.recall),
        s.false,
        _fmt(s.precision),
        _fmt(s.false_per_1000, 2),
    ]


def _min(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _max(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in sorted(counter.items())) or "none"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(headers: list[str], rows: Sequence[Sequence[object]]) -> list[str]:
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
