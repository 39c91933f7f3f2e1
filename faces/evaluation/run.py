"""The evaluation run: a throw-away database, enrolment, import, scoring."""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count, Min
from django.test.utils import override_settings

from faces.evaluation.labels import EvaluationError, LabelledImage, read_labels
from faces.evaluation.report import FalseMatch, GroupPhoto, Report, Score

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
    from faces.imports.importer import run_import
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
