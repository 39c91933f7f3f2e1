"""Recall and false matches on the labelled dev photos, through the product's own code.

Follows the evaluation protocol of ../shared/faces/README.md ("find me in the
event photos"):

1. every labelled image of the four folders in ../shared/faces (the `file`
   column of each labels.csv; LFW's deep-funneled twins in `alt_file` are the
   same photos and are left out) is imported ONCE as event photos with
   `faces.importer.run_import(FolderSource(root))`, one album per dataset folder,
   at the default settings (albums are symlinks under /tmp, never copies);
2. every person with two or more `single` images becomes a member, gives consent
   and enrols ONE image, the first in labels.csv order, with
   `members.services.reference_add`; when that image is rejected (no face, or
   several faces) the person's next image is tried and the rejection counted;
3. matches are stored by the product while enrolling, at a storing threshold
   (default 0.7, settable with --store-threshold) put in
   settings.THROWBACK_MATCH_THRESHOLD before the first enrolment; the member's
   matched photos (what `Photo.objects.matched_to` returns) are then read from
   the database with each photo's smallest stored `Match.distance`, and cut at
   each threshold of --thresholds;
4. a hit is a matched photo whose `identities` contain the person, a false
   match one whose `identities` do not. The member's enrolled image is left
   out of that member's scoring, and bbt_faces group stills (faces not labelled
   individually) are left out of all scoring.

Reports per threshold: recall (hits / photos that contain the person),
precision, false matches per 1,000 member-photo pairs; per folder; members
enrolled and enrolment rejections; faces detected versus faces_expected on the
group photos. As a check of the distance cut, the matches are finally rebuilt
at the settings' default threshold with `faces.services.matches_rebuild` (what
`manage.py rematch` does) and `Photo.objects.matched_to` is compared with the
cut at that threshold.

Run from the repository root (under a minute on 2 cores):

    .venv/bin/python bench/dev_recall.py
    .venv/bin/python bench/dev_recall.py --thresholds 0.45,0.49,0.55,0.6 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from common import REPO, out, setup_django, table  # noqa: E402 - bench/ is on sys.path

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
DATASETS = ["bbt_faces", "face_recognition_examples", "five_celebrity_faces", "lfw_dev"]
UNSCORED_GROUPS = "bbt_faces"  # group stills of enrolled characters, faces not labelled


@dataclass(frozen=True)
class Image:
    dataset: str
    file: str
    path: Path
    source_id: str  # the Photo.source_id the folder import gives it: "<album>/<file name>"
    identities: frozenset[str]
    kind: str
    faces_expected: str

    @property
    def scored(self) -> bool:
        return not (self.dataset == UNSCORED_GROUPS and self.kind == "group")


def load_images(root: Path) -> list[Image]:
    """Read every labels.csv and link its images flat into root/<dataset>/."""
    images = []
    for dataset in DATASETS:
        folder = FACES_DIR / dataset
        labels = folder / "labels.csv"
        if not labels.is_file():
            raise SystemExit(f"{labels} not found; set THROWBACK_FACES_DIR to the labelled photos folder")
        album = root / dataset
        album.mkdir(parents=True)
        with labels.open(newline="") as handle:
            for row in csv.DictReader(handle):
                flat = row["file"].replace("/", "__")
                link = album / flat
                if link.exists():
                    raise SystemExit(f"two images flatten to {link}")
                link.symlink_to((folder / row["file"]).resolve())
                images.append(
                    Image(
                        dataset=dataset,
                        file=row["file"],
                        path=folder / row["file"],
                        source_id=f"{dataset}/{flat}",
                        identities=frozenset(filter(None, row["identities"].split(";"))),
                        kind=row["kind"],
                        faces_expected=row["faces_expected"],
                    )
                )
    return images


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", default="0.45,0.49,0.55,0.6", help="comma-separated distances")
    parser.add_argument(
        "--store-threshold", type=float, default=0.7, help="threshold matches are stored at (default 0.7)"
    )
    parser.add_argument("--workers", type=int, help="import workers (default: the product's, one per core)")
    args = parser.parse_args()
    thresholds = sorted({float(t) for t in args.thresholds.split(",") if t.strip()})
    if not thresholds:
        parser.error("give at least one threshold")
    store_threshold = max(args.store_threshold, *thresholds)

    work = Path(tempfile.mkdtemp(prefix="throwback-bench-recall-"))
    try:
        setup_django(work)
        return run(work, thresholds, store_threshold, args.workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, thresholds: list[float], store_threshold: float, workers: int | None) -> int:
    from django.conf import settings
    from django.db.models import Count, Min

    from faces.importer import default_workers, run_import
    from faces.models import Match, Photo
    from faces.services import matches_rebuild
    from faces.sources.folder import FolderSource
    from members.models import Member
    from members.services import ReferenceRejected, consent_give, reference_add

    images = load_images(work / "albums")
    by_source_id = {image.source_id: image for image in images}
    default_threshold = settings.THROWBACK_MATCH_THRESHOLD
    out("Dev recall: README protocol through run_import + reference_add + stored matches")
    out(
        f"photos: {FACES_DIR} ({', '.join(DATASETS)}), {len(images)} labelled images; "
        f"encode max side {settings.THROWBACK_ENCODE_MAX_SIDE} px; default threshold {default_threshold}"
    )

    # 1. One folder import at the default settings.
    workers = workers or default_workers()
    started = time.monotonic()
    summary = run_import(FolderSource(work / "albums"), workers=workers)
    import_seconds = time.monotonic() - started
    out(f"import (workers={workers}): {summary.line()}")
    for error in summary.errors[:10]:
        out(f"  {error}")
    photos = {
        source_id: (status, faces)
        for source_id, status, faces in Photo.objects.annotate(n=Count("faces")).values_list(
            "source_id", "status", "n"
        )
    }
    if set(photos) != set(by_source_id):
        out(f"NOTE: {len(photos)} photos imported for {len(by_source_id)} labelled images")
    out()

    rows = []
    for dataset in DATASETS:
        mine = [image for image in images if image.dataset == dataset]
        counts = [photos.get(image.source_id, ("missing", 0)) for image in mine]
        faces = [n for status, n in counts if status == Photo.Status.DONE]
        rows.append(
            [
                dataset,
                len(mine),
                sum(status != Photo.Status.DONE for status, _ in counts),
                sum(n == 0 for n in faces),
                sum(n == 1 for n in faces),
                sum(n >= 2 for n in faces),
                sum(faces),
            ]
        )
    out("Faces found per imported photo")
    table(["folder", "photos", "failed", "0 faces", "1 face", ">=2 faces", "faces"], rows)
    out()

    # 2. Members: every person with >= 2 single images, enrolled with their first usable one.
    people: dict[str, list[Image]] = defaultdict(list)
    for image in images:
        if image.kind == "single":
            for identity in image.identities - {"unknown"}:
                people[identity].append(image)
    people = {name: shots for name, shots in people.items() if len(shots) >= 2}

    settings.THROWBACK_MATCH_THRESHOLD = store_threshold
    enrolled: dict[str, tuple[Member, Image]] = {}
    rejections: list[tuple[str, str, str]] = []
    started = time.monotonic()
    for name, shots in people.items():
        member = Member.objects.create_user(username=name)
        consent_give(member=member)
        for shot in shots:
            try:
                reference_add(member=member, data=shot.path.read_bytes())
            except ReferenceRejected as exc:
                rejections.append((name, f"{shot.dataset}/{shot.file}", exc.code))
                continue
            enrolled[name] = (member, shot)
            break
    enrol_seconds = time.monotonic() - started

    # 3. Each member's matched photos with their smallest stored distance.
    distances: dict[str, dict[str, float]] = {}
    listing_differs = 0
    for name, (member, _) in enrolled.items():
        # The photos the member sees (the product's listing), each with its smallest stored distance.
        stored = dict(
            Match.objects.filter(member=member)
            .values("face__photo__source_id")
            .annotate(d=Min("distance"))
            .values_list("face__photo__source_id", "d")
        )
        listed = set(Photo.objects.matched_to(member).values_list("source_id", flat=True))
        listing_differs += listed != set(stored)
        distances[name] = {source_id: d for source_id, d in stored.items() if source_id in listed}

    # 4. Scoring per threshold, overall and per folder of the member.
    def score(names: list[str], threshold: float) -> dict[str, int]:
        total = Counter()
        for name in names:
            _, own = enrolled[name]
            event = [image for image in images if image.scored and image.source_id != own.source_id]
            positives = {image.source_id for image in event if name in image.identities}
            scored_ids = {image.source_id for image in event}
            matched = {s for s, d in distances[name].items() if d <= threshold and s in scored_ids}
            total["pairs"] += len(event)
            total["positives"] += len(positives)
            total["hits"] += len(matched & positives)
            total["false"] += len(matched - positives)
            total["found_any"] += bool(matched & positives)
        return total

    names = list(enrolled)
    rows = []
    for threshold in thresholds:
        s = score(names, threshold)
        rows.append(
            [
                f"{threshold:.2f}" + (" (default)" if threshold == default_threshold else ""),
                len(names),
                s["pairs"],
                s["positives"],
                s["hits"],
                fmt(ratio(s["hits"], s["positives"])),
                s["false"],
                fmt(ratio(s["hits"], s["hits"] + s["false"])),
                fmt(ratio(1000 * s["false"], s["pairs"]), 2),
                f"{s['found_any']}/{len(names)}",
            ]
        )
    out(f"Recall and false matches (matches stored at {store_threshold}, cut by Match.distance)")
    table(
        [
            "threshold",
            "members",
            "pairs",
            "positives",
            "hits",
            "recall",
            "false",
            "precision",
            "false/1000 pairs",
            "members found",
        ],
        rows,
    )
    out()

    rows = []
    for dataset in DATASETS:
        mine = [name for name in names if enrolled[name][1].dataset == dataset]
        cells: list[object] = [dataset, len(mine)]
        for threshold in thresholds:
            s = score(mine, threshold)
            cells.append(
                f"{fmt(ratio(s['hits'], s['positives']))} ({s['hits']}/{s['positives']}, {s['false']}F)"
            )
        rows.append(cells)
    out("Recall per folder of the member: recall (hits/positives, false matches)")
    table(["folder", "members", *[f"t={t:.2f}" for t in thresholds]], rows)
    out()

    first_try = sum(1 for name, (_, shot) in enrolled.items() if shot is people[name][0])
    out(
        f"Members: {len(people)} people with >=2 single images; enrolled {len(enrolled)} "
        f"({first_try} with their first image, {len(enrolled) - first_try} with a later one), "
        f"{len(people) - len(enrolled)} not enrolled; enrolment rejections: {len(rejections)} "
        f"({', '.join(f'{code} {n}' for code, n in Counter(c for _, _, c in rejections).items()) or 'none'}); "
        f"enrolment took {enrol_seconds:.1f} s"
    )
    for name, file, code in rejections:
        out(f"  rejected: {name}: {file} ({code})")
    out()

    # False matches at the default threshold, closest first.
    false_matches = []
    for name in names:
        _, own = enrolled[name]
        for source_id, d in distances[name].items():
            image = by_source_id[source_id]
            scored = image.scored and source_id != own.source_id
            if d <= default_threshold and scored and name not in image.identities:
                false_matches.append((d, name, source_id, ";".join(sorted(image.identities))))
    out(f"False matches at {default_threshold} ({len(false_matches)}; up to 15 shown)")
    if false_matches:
        table(
            ["member", "photo", "photo identities", "distance"],
            [[n, s, ids, f"{d:.3f}"] for d, n, s, ids in sorted(false_matches)[:15]],
        )
    out()

    rows = [
        [
            f"{image.dataset}/{image.file}",
            ";".join(sorted(image.identities)),
            image.faces_expected or "-",
            photos.get(image.source_id, ("missing", 0))[1],
            "yes" if image.scored else "no",
        ]
        for image in images
        if image.kind == "group"
    ]
    out("Group photos: faces detected vs faces_expected")
    table(["photo", "identities", "expected", "detected", "scored"], rows)
    out()

    # Check: rebuild the matches at the default threshold the way `manage.py rematch`
    # does and compare Photo.objects.matched_to with the distance cut used above.
    settings.THROWBACK_MATCH_THRESHOLD = default_threshold
    rebuilt = matches_rebuild()
    agree = sum(
        set(Photo.objects.matched_to(member).values_list("source_id", flat=True))
        == {s for s, d in distances[name].items() if d <= default_threshold}
        for name, (member, _) in enrolled.items()
    )
    out(
        f"Check: matched_to at {store_threshold} lists every photo with a stored match for "
        f"{len(enrolled) - listing_differs}/{len(enrolled)} members; after matches_rebuild() at "
        f"{default_threshold} ({rebuilt} matches) matched_to equals the distance cut for {agree}/{len(enrolled)}"
    )
    out(f"Timing: import {import_seconds:.1f} s, enrolment {enrol_seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
