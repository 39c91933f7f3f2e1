"""Accuracy on labelled photo folders, measured through the product's own code.

Follows the protocol of ../shared/faces/README.md ("find me in the event
photos") for folders in its format (a `labels.csv` with `file`,
`identities`, `kind`, `faces_expected`):

1. Every person with two or more `single` images becomes a member, gives
   consent and enrols their first `references` usable images (labels.csv
   order) with `members.services.reference_add`, the selfie upload service;
   an image it refuses (no face, several faces) is counted and the next one
   tried. `distractor` images and `unknown` faces are never enrolled.
2. Every labelled image (`file`; LFW's `alt_file` twins are the same photos
   and are left out) is imported as an event photo with
   `faces.importer.run_import` from a `FolderSource`: one album per folder,
   made of symbolic links in a temporary directory, never copies.
3. The import stores `Match` rows at the largest threshold evaluated; each
   smaller threshold is a cut of the stored `Match.distance` (a match at
   threshold t is exactly a stored match with distance ≤ t).
4. A member's photos are their stored matches, minus their own enrolled
   images. A hit is a photo whose `identities` contain the person, a false
   match one whose `identities` do not. Group stills of `bbt_faces` (enrolled
   characters, faces not labelled individually) are left out of scoring.

Everything happens in a throw-away database (Django's test-database
machinery: a new database next to the real one, dropped afterwards; an
in-memory one on SQLite) and a temporary MEDIA_ROOT, so the real database
and media are never read or written. Engine options are applied as settings
overrides, so the import and the selfie service run exactly as configured.
"""

from __future__ import annotations

import csv
import os
import resource
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count, Min
from django.test.utils import override_settings

UNSCORED_GROUP_FOLDERS = frozenset({"bbt_faces"})
ENGINE_SETTINGS = {
    "encode_max_side": "THROWBACK_ENCODE_MAX_SIDE",
    "upsample": "THROWBACK_DETECT_UPSAMPLE",
    "detector": "THROWBACK_DETECTOR",
    "jitters": "THROWBACK_ENCODE_JITTERS",
    "selfie_jitters": "THROWBACK_SELFIE_JITTERS",
    "landmarks": "THROWBACK_LANDMARKS",
}
KINDS = frozenset({"single", "distractor", "group", "noface"})


class EvaluationError(Exception):
    """The labelled folders cannot be read, or the evaluation cannot run here."""


@dataclass(frozen=True)
class LabelledImage:
    folder: str
    file: str
    path: Path
    identities: frozenset[str]
    kind: str
    faces_expected: int | None

    @property
    def source_id(self) -> str:
        """The Photo.source_id a folder import gives it: "<album>/<flattened file>"."""
        return f"{self.folder}/{self.file.replace('/', '__')}"

    @property
    def scored(self) -> bool:
        return not (self.folder in UNSCORED_GROUP_FOLDERS and self.kind == "group")


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


def read_labels(folders: list[Path]) -> list[LabelledImage]:
    """Every labelled image of the folders; raises EvaluationError on a bad folder."""
    images: list[LabelledImage] = []
    names = [folder.name for folder in folders]
    if len(set(names)) != len(names):
        raise EvaluationError("two folders have the same name; each becomes an album named after it")
    for folder in folders:
        labels = folder / "labels.csv"
        if not labels.is_file():
            raise EvaluationError(f"{labels} not found: not a labelled folder")
        with labels.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                images.append(_labelled_image(folder, labels, line, row))
    seen: set[str] = set()
    for image in images:
        if image.source_id in seen:
            raise EvaluationError(f"{image.folder}: two images flatten to {image.source_id}")
        seen.add(image.source_id)
    return images


def _labelled_image(folder: Path, labels: Path, line: int, row: dict[str, str]) -> LabelledImage:
    where = f"{labels}, line {line}"
    file, kind = (row.get("file") or "").strip(), (row.get("kind") or "").strip()
    if not file or kind not in KINDS:
        raise EvaluationError(f"{where}: needs a file and a kind ({', '.join(sorted(KINDS))})")
    path = folder / file
    if not path.is_file():
        raise EvaluationError(f"{where}: {path} not found")
    expected = (row.get("faces_expected") or "").strip()
    if expected and not expected.isdigit():
        raise EvaluationError(f"{where}: faces_expected {expected!r} is not a number")
    return LabelledImage(
        folder=folder.name,
        file=file,
        path=path,
        identities=frozenset(filter(None, (row.get("identities") or "").split(";"))),
        kind=kind,
        faces_expected=int(expected) if expected else None,
    )


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Point the default connection at a new, empty, migrated database; drop it after.

    Uses Django's test-database machinery, so the real database is never
    opened: on PostgreSQL a database named after the real one plus
    "_evaluate_<pid>" is created (the role needs CREATEDB, as for the tests),
    on SQLite an in-memory one.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.in_atomic_block:
        raise EvaluationError("evaluate cannot run inside a transaction")
    real_name = connection.settings_dict["NAME"]
    test = connection.settings_dict.setdefault("TEST", {})
    saved = dict(test)
    test["NAME"] = None if connection.vendor == "sqlite" else f"{real_name}_evaluate_{os.getpid()}"
    try:
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    except Exception as exc:
        test.clear()
        test.update(saved)
        connection.settings_dict["NAME"] = real_name
        raise EvaluationError(f"cannot create a throw-away database: {exc}") from exc
    try:
        yield name
    finally:
        connection.creation.destroy_test_db(real_name, verbosity=0)
        test.clear()
        test.update(saved)


def evaluate(
    folders: list[Path],
    *,
    thresholds: list[float],
    overrides: dict[str, Any] | None = None,
    references: int = 1,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Run the protocol on labelled folders and score it at each threshold.

    `overrides` maps keys of ENGINE_SETTINGS to values that replace the
    settings for this run. Raises EvaluationError for unreadable folders.
    """
    if not thresholds or any(not 0 < t < 2 for t in thresholds):
        raise EvaluationError("thresholds must lie between 0 and 2")
    if references < 1:
        raise EvaluationError("enrol at least one reference per member")
    thresholds = sorted(set(thresholds))
    folders = [Path(folder).resolve() for folder in folders]
    images = read_labels(folders)
    changed = {ENGINE_SETTINGS[key]: value for key, value in (overrides or {}).items() if value is not None}
    with tempfile.TemporaryDirectory(prefix="throwback-evaluate-") as work:
        media = Path(work) / "media"
        with (
            override_settings(
                THROWBACK_MATCH_THRESHOLD=thresholds[-1],
                THROWBACK_MAX_REFERENCES=max(references, settings.THROWBACK_MAX_REFERENCES),
                MEDIA_ROOT=str(media),
                STORAGES={
                    **settings.STORAGES,
                    "default": {
                        "BACKEND": "django.core.files.storage.FileSystemStorage",
                        "OPTIONS": {"location": str(media)},
                    },
                },
                **changed,
            ),
            throwaway_database(),
        ):
            options = {key: getattr(settings, name) for key, name in ENGINE_SETTINGS.items()}
            report = Report(
                folders=[str(f) for f in folders],
                options={**options, "references": references, "workers": workers},
                thresholds=thresholds,
                images=len(images),
            )
            enrolled = _enrol(images, references=references, report=report)
            _import(images, Path(work) / "albums", workers=workers, report=report, progress=progress)
            _score(images, enrolled, report=report)
    return report


def _enrol(images: list[LabelledImage], *, references: int, report: Report) -> dict[str, set[str]]:
    """Members with their enrolled images' source ids, through the selfie service."""
    from members.models import Member
    from members.services import ReferenceRejected, consent_give, reference_add

    people: dict[str, list[LabelledImage]] = defaultdict(list)
    for image in images:
        if image.kind == "single":
            for identity in image.identities - {"unknown"}:
                people[identity].append(image)
    people = {name: shots for name, shots in people.items() if len(shots) >= 2}
    report.people = len(people)
    rejections: Counter[str] = Counter()
    enrolled: dict[str, set[str]] = {}
    for name, shots in people.items():
        member = Member.objects.create_user(username=name[:150])
        consent_give(member=member)
        own: set[str] = set()
        # Keep at least one other image of the person to find.
        for shot in shots[:-1]:
            if len(own) == references:
                break
            try:
                reference_add(member=member, data=shot.path.read_bytes())
            except ReferenceRejected as exc:
                rejections[exc.code] += 1
                continue
            own.add(shot.source_id)
        if own:
            enrolled[name] = own
    report.members = len(enrolled)
    report.references = sum(len(own) for own in enrolled.values())
    report.rejections = dict(rejections)
    return enrolled


def _import(
    images: list[LabelledImage],
    albums: Path,
    *,
    workers: int,
    report: Report,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Link the images flat into one album folder per labelled folder and import them."""
    from faces.importer import run_import
    from faces.sources.folder import FolderSource

    for image in images:
        link = albums / image.source_id
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(image.path.resolve())
    cpu_before = _cpu_seconds()
    started = time.monotonic()
    summary = run_import(FolderSource(albums), workers=workers, progress=progress)
    report.import_seconds = time.monotonic() - started
    report.import_cpu_seconds = _cpu_seconds() - cpu_before
    report.photos_encoded = summary.photos_encoded
    report.photos_failed = summary.photos_failed
    report.faces = summary.faces
    report.errors = summary.errors


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the import's workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _score(images: list[LabelledImage], enrolled: dict[str, set[str]], *, report: Report) -> None:
    from faces.models import Match, Photo
    from members.models import Member

    by_source_id = {image.source_id: image for image in images}
    faces = dict(Photo.objects.annotate(n=Count("faces")).values_list("source_id", "n"))
    report.groups = [
        GroupPhoto(
            photo=f"{image.folder}/{image.file}",
            identities=";".join(sorted(image.identities)),
            expected=image.faces_expected,
            detected=faces.get(image.source_id, 0),
            scored=image.scored,
        )
        for image in images
        if image.kind == "group"
    ]
    members = {member.username: member for member in Member.objects.filter(username__in=list(enrolled))}
    distances: dict[str, dict[str, float]] = {}
    for name in enrolled:
        rows = (
            Match.objects.filter(member=members[name[:150]])
            .values("face__photo__source_id")
            .annotate(d=Min("distance"))
            .values_list("face__photo__source_id", "d")
        )
        distances[name] = dict(rows)

    def score(names: list[str], threshold: float) -> Score:
        result = Score(threshold=threshold, members=len(names))
        for name in names:
            photos = [i for i in images if i.scored and i.source_id not in enrolled[name]]
            positives = {i.source_id for i in photos if name in i.identities}
            candidates = {i.source_id for i in photos}
            matched = {s for s, d in distances[name].items() if d <= threshold and s in candidates}
            result.pairs += len(photos)
            result.positives += len(positives)
            result.hits += len(matched & positives)
            result.false += len(matched - positives)
        return result

    names = sorted(enrolled)
    report.scores = [score(names, t) for t in report.thresholds]
    home = {name: by_source_id[next(iter(own))].folder for name, own in enrolled.items()}
    for folder in dict.fromkeys(image.folder for image in images):
        mine = [name for name in names if home[name] == folder]
        if mine:
            report.per_folder[folder] = [score(mine, t) for t in report.thresholds]
    report.false_matches = sorted(
        (
            FalseMatch(
                member=name,
                photo=f"{by_source_id[s].folder}/{by_source_id[s].file}",
                identities=";".join(sorted(by_source_id[s].identities)),
                distance=d,
            )
            for name in names
            for s, d in distances[name].items()
            if s in by_source_id
            and by_source_id[s].scored
            and s not in enrolled[name]
            and name not in by_source_id[s].identities
        ),
        key=lambda m: (m.distance, m.member, m.photo),
    )


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
