"""The evaluation run: a throw-away database, enrolment, import, scoring."""

from __future__ import annotations

import hashlib
import os
import resource
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count, Min
from django.test.utils import override_settings

from faces.evaluation.labels import EvaluationError, LabelledImage, read_labels
from faces.evaluation.report import CrossValidation, FalseMatch, GroupPhoto, Report, Score, StepResult

ENGINE_SETTINGS = {
    "encode_max_side": "THROWBACK_ENCODE_MAX_SIDE",
    "upsample": "THROWBACK_DETECT_UPSAMPLE",
    "detector": "THROWBACK_DETECTOR",
    "jitters": "THROWBACK_ENCODE_JITTERS",
    "selfie_jitters": "THROWBACK_SELFIE_JITTERS",
    "landmarks": "THROWBACK_LANDMARKS",
}


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


# The switches of the rule evaluate measures step by step (docs/accuracy.md).
RULE_SETTINGS = (
    "THROWBACK_MATCH_THRESHOLD",
    "THROWBACK_MATCH_SCALE",
    "THROWBACK_ONE_FACE_ONE_PERSON",
    "THROWBACK_LEARNED_PER_SELFIE",
)
TARGET_PER_1000 = 0.1


@dataclass(frozen=True)
class Step:
    """One line of the step-by-step table: fixed settings, and the one setting swept."""

    name: str
    setting: str
    values: list[float]
    fixed: dict[str, Any]


def steps(thresholds: list[float], scales: list[float]) -> list[Step]:
    """Today's rule, then each change of issue 14 added to the one before it; local limits when scales are given."""
    learned = settings.THROWBACK_LEARNED_PER_SELFIE or 3
    flat = {"THROWBACK_MATCH_SCALE": 0.0}
    assign = {"THROWBACK_ONE_FACE_ONE_PERSON": True}
    threshold = "THROWBACK_MATCH_THRESHOLD"
    result = [
        Step(
            "today's rule",
            threshold,
            thresholds,
            {**flat, "THROWBACK_ONE_FACE_ONE_PERSON": False, "THROWBACK_LEARNED_PER_SELFIE": 0},
        ),
        Step(
            "+ one face, one person",
            threshold,
            thresholds,
            {**flat, **assign, "THROWBACK_LEARNED_PER_SELFIE": 0},
        ),
        Step(
            "+ learned references",
            threshold,
            thresholds,
            {**flat, **assign, "THROWBACK_LEARNED_PER_SELFIE": learned},
        ),
    ]
    if scales:
        scale = "THROWBACK_MATCH_SCALE"
        result += [
            Step(
                "one face, one person + local limits",
                scale,
                scales,
                {**assign, "THROWBACK_LEARNED_PER_SELFIE": 0},
            ),
            Step(
                "+ learned references, local limits",
                scale,
                scales,
                {**assign, "THROWBACK_LEARNED_PER_SELFIE": learned},
            ),
        ]
    return result


def evaluate(
    folders: list[Path],
    *,
    thresholds: list[float],
    scales: list[float] | None = None,
    overrides: dict[str, Any] | None = None,
    references: int = 1,
    workers: int = 1,
    folds: int = 5,
    answer: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Run the protocol on labelled folders and score the matching rule step by step.

    `overrides` maps keys of ENGINE_SETTINGS to values that replace the
    settings for this run. After one enrolment and one import, every step of
    `steps()` is scored at each swept value by rebuilding the matches with
    the product's own services (`matches_rebuild`, `references_refresh`),
    and cross-validated over `folds` folds of members. Then the configured
    rule is scored as is and, with `answer`, after an honest member answered
    every "Is this you?" from the labels. Raises EvaluationError for
    unreadable folders.
    """
    scales = sorted(set(scales or []))
    if not thresholds or any(not 0 < t < 2 for t in thresholds):
        raise EvaluationError("thresholds must lie between 0 and 2")
    if any(not 0 < s <= 2 for s in scales):
        raise EvaluationError("scales must lie above 0 and at most 2")
    if references < 1:
        raise EvaluationError("enrol at least one reference per member")
    if folds < 2:
        raise EvaluationError("cross-validation needs at least 2 folds")
    thresholds = sorted(set(thresholds))
    folders = [Path(folder).resolve() for folder in folders]
    images = read_labels(folders)
    changed = {ENGINE_SETTINGS[key]: value for key, value in (overrides or {}).items() if value is not None}
    with tempfile.TemporaryDirectory(prefix="throwback-evaluate-") as work:
        media = Path(work) / "media"
        with (
            override_settings(
                THROWBACK_MAX_REFERENCES=max(references, settings.THROWBACK_MAX_REFERENCES),
                MEDIA_ROOT=str(media),
                # A batch of enrolments in one command: a child process per
                # selfie (the web default) would only add its model load each time.
                THROWBACK_ENCODE_SELFIES_IN="inline",
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
            rule = {
                name: getattr(settings, name)
                for name in (*RULE_SETTINGS, "THROWBACK_MATCH_CAP", "THROWBACK_SUGGEST_BAND")
            }
            report = Report(
                folders=[str(f) for f in folders],
                options={**options, "references": references, "workers": workers},
                thresholds=thresholds,
                images=len(images),
                rule=rule,
                scales=scales,
            )
            enrolled = _enrol(images, references=references, report=report)
            _import(images, Path(work) / "albums", workers=workers, report=report, progress=progress)
            scorer = Scorer(images, enrolled, folds=folds)
            for step in steps(thresholds, scales):
                report.steps.append(_sweep(step, scorer))
            report.cv = [cross_validate(step, scorer.folds) for step in report.steps]
            report.scores = report.steps[0].scores
            _rebuild()  # the configured rule
            report.configured = scorer.total(scorer.counts())
            report.learned_per_member = _learned_per_member(enrolled)
            _score(images, enrolled, report=report, scorer=scorer)
            if answer:
                report.questions = _answer_honestly(images, enrolled)
                report.answered = scorer.total(scorer.counts())
    return report


def _rebuild() -> None:
    """Matches as the product makes them under the current settings: rebuild, then limits and learning.

    Learned references of the value before are dropped first, so that each
    value's figures do not depend on the order in which values are swept.
    """
    from faces.services import matches_rebuild, references_refresh

    references_refresh(learn=False)
    matches_rebuild()
    references_refresh()


def _sweep(step: Step, scorer: Scorer) -> StepResult:
    result = StepResult(name=step.name, setting=step.setting, values=list(step.values))
    for value in step.values:
        with override_settings(**step.fixed, **{step.setting: value}):
            _rebuild()
            counts = scorer.counts()
        result.per_member.append({name: list(c) for name, c in counts.items()})
        score = scorer.total(counts)
        score.threshold = value
        result.scores.append(score)
    return result


def cross_validate(
    step: StepResult, folds: list[set[str]], target: float = TARGET_PER_1000
) -> CrossValidation:
    """Per fold: the value with the best recall at ≤ target false per 1,000 on the other folds, scored on this fold."""
    result = CrossValidation(name=step.name, setting=step.setting)
    for fold in folds:
        best: tuple[float, float] | None = None
        chosen = 0
        for i, per_member in enumerate(step.per_member):
            train = _sum(c for name, c in per_member.items() if name not in fold)
            if train.false_per_1000 is None or train.false_per_1000 > target:
                continue
            key = (train.recall or 0.0, -i)
            if best is None or key > best:
                best, chosen = key, i
        test = _sum(c for name, c in step.per_member[chosen].items() if name in fold)
        result.chosen.append(step.values[chosen])
        result.fold_recall.append(test.recall)
        result.fold_false_per_1000.append(test.false_per_1000)
        result.total.pairs += test.pairs
        result.total.positives += test.positives
        result.total.hits += test.hits
        result.total.false += test.false
    return result


def _sum(counts: Iterable[list[int]]) -> Score:
    score = Score(threshold=0.0)
    for pairs, positives, hits, false in counts:
        score.members += 1
        score.pairs += pairs
        score.positives += positives
        score.hits += hits
        score.false += false
    return score


class Scorer:
    """Counts member–photo pairs of the stored matches (the photos members are shown)."""

    def __init__(self, images: list[LabelledImage], enrolled: dict[str, set[str]], *, folds: int) -> None:
        self.images = images
        self.enrolled = enrolled
        self.names = sorted(enrolled)
        ranked = sorted(self.names, key=lambda name: hashlib.sha256(f"fold {name}".encode()).hexdigest())
        self.folds = [set(ranked[i::folds]) for i in range(folds)]

    def distances(self) -> dict[str, dict[str, float]]:
        """Per member: matched photo source id → smallest distance."""
        from faces.models import Match

        result: dict[str, dict[str, float]] = {name: {} for name in self.names}
        rows = (
            Match.objects.values("member__username", "face__photo__source_id")
            .annotate(d=Min("distance"))
            .values_list("member__username", "face__photo__source_id", "d")
        )
        usernames = {name[:150]: name for name in self.names}
        for username, source_id, d in rows:
            if username in usernames:
                result[usernames[username]][source_id] = d
        return result

    def counts(self, names: Iterable[str] | None = None) -> dict[str, tuple[int, int, int, int]]:
        """Per member: (pairs, positives, hits, false)."""
        matched = self.distances()
        result = {}
        for name in self.names if names is None else names:
            photos = [i for i in self.images if i.scored and i.source_id not in self.enrolled[name]]
            positives = {i.source_id for i in photos if name in i.identities}
            mine = set(matched[name]) & {i.source_id for i in photos}
            result[name] = (len(photos), len(positives), len(mine & positives), len(mine - positives))
        return result

    @staticmethod
    def total(counts: dict[str, tuple[int, int, int, int]]) -> Score:
        return _sum(list(c) for c in counts.values())


def _learned_per_member(enrolled: dict[str, set[str]]) -> float:
    from members.models import ReferenceFace

    learned = ReferenceFace.objects.filter(kind=ReferenceFace.Kind.LEARNED).count()
    return learned / len(enrolled) if enrolled else 0.0


def _answer_honestly(images: list[LabelledImage], enrolled: dict[str, set[str]], rounds: int = 10) -> float:
    """Every member answers every open "Is this you?" from the labels until none is left; questions per member."""
    from faces.selectors import member_suggestions
    from faces.services import suggestion_answer
    from members.models import Member

    identities = {image.source_id: image.identities for image in images}
    members = list(Member.objects.filter(username__in=[name[:150] for name in enrolled]))
    names = {name[:150]: name for name in enrolled}
    asked = 0
    for _ in range(rounds):
        answered = 0
        for member in members:
            for offer in member_suggestions(member, limit=None):
                yes = names[member.username] in identities.get(offer.photo.source_id, frozenset())
                answered += suggestion_answer(member=member, suggestion_id=offer.pk, yes=yes)
        asked += answered
        if not answered:
            break
    return asked / len(members) if members else 0.0


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
    from faces.imports.importer import run_import, workers_stop
    from faces.sources.folder import FolderSource

    for image in images:
        link = albums / image.source_id
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(image.path.resolve())
    cpu_before = _cpu_seconds()
    started = time.monotonic()
    summary = run_import(FolderSource(albums), workers=workers, progress=progress)
    report.import_seconds = time.monotonic() - started
    # The encoding workers outlive the run (kept for the next one): stop them,
    # so that their CPU time is counted with this process's finished children.
    workers_stop()
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


def _score(
    images: list[LabelledImage], enrolled: dict[str, set[str]], *, report: Report, scorer: Scorer
) -> None:
    """Group photos, per-folder figures and the closest false matches of the configured rule."""
    from faces.models import Photo

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
    names = sorted(enrolled)
    home = {name: by_source_id[next(iter(own))].folder for name, own in enrolled.items()}
    for folder in dict.fromkeys(image.folder for image in images):
        mine = [name for name in names if home[name] == folder]
        if mine:
            report.per_folder[folder] = [scorer.total(scorer.counts(mine))]
    distances = scorer.distances()
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
