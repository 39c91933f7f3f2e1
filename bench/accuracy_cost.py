"""What the matching rule of issue 14 costs, per step, on PostgreSQL (docs/accuracy.md).

Faces are the labelled photos' real encodings (bench/accuracy_encode.py's
cache), repeated with small noise until there are --faces of them, two per
photo; --members members have one selfie each (a real selfie encoding).
In a dedicated database (throwback_bench_i14_cost, never the test database),
median wall-clock milliseconds and this process's CPU milliseconds of:

- storing a new photo's two faces: today's match (references_near_faces
  within one threshold, every hit stored) against the issue-14 store
  (the band-widened query, one face one person, offers: assignment.hits_store);
- adding a selfie: today's match (faces_near, every hit stored) against
  reference_match (faces_near at the widened limit, then the touched photos
  assigned again with every reference);
- references_refresh after an import (limits of every reference from a face
  sample, then each member's mean and learned references), in total and per member.

    .venv/bin/python bench/accuracy_cost.py                 # 20,000 faces, 300 members (a few minutes)
    .venv/bin/python bench/accuracy_cost.py --faces 5000 --members 100
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from accuracy_encode import load  # noqa: E402 - bench/ is on sys.path
from common import out, setup_django_postgres, table  # noqa: E402

DATABASE = "throwback_bench_i14_cost"
REPEATS = 15


def timed(run: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float]:
    """Median wall ms and median CPU ms (this process) of run()."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(1000 * (time.perf_counter() - wall))
        cpus.append(1000 * (time.process_time() - cpu))
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=20_000)
    parser.add_argument("--members", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        setup_django_postgres(Path(work), database=DATABASE)  # before load(), which sets Django up too
        images = load()
        encodings = np.asarray([f.encoding for image in images for f in image.faces], dtype=np.float64)
        selfies = np.asarray([image.selfie[0].encoding for image in images if image.selfie], dtype=np.float64)
        run(args.faces, args.members, encodings, selfies)


def run(n_faces: int, n_members: int, encodings: np.ndarray, selfies: np.ndarray) -> None:
    from django.db import transaction

    from faces import index, matching
    from faces.models import Album, FaceEncoding, Match, Photo, Suggestion
    from faces.services import assignment, references_refresh
    from faces.services.matches import reference_match
    from members.models import Member, ReferenceFace

    rng = np.random.default_rng(14)
    for model in (Suggestion, Match, ReferenceFace, FaceEncoding, Photo, Album):
        model.objects.all().delete()
    Member.objects.all().delete()
    album = Album.objects.create(source=Album.Source.FOLDER, source_id="bench", title="bench")
    photos = Photo.objects.bulk_create(
        [Photo(album=album, source_id=f"p{i}.jpg", status=Photo.Status.DONE) for i in range(n_faces // 2)]
    )
    faces = []
    for i in range(n_faces):
        face = FaceEncoding(photo=photos[i // 2], top=0, right=100, bottom=100, left=0)
        face.set_encoding(encodings[i % len(encodings)] + rng.normal(0, 0.02, 128))
        faces.append(face)
    FaceEncoding.objects.bulk_create(faces, batch_size=2000)
    members = Member.objects.bulk_create([Member(username=f"m{i}") for i in range(n_members)])
    references = []
    for i, member in enumerate(members):
        reference = ReferenceFace(member=member, image="references/x.jpg", match_limit=0.49)
        reference.set_encoding(selfies[i % len(selfies)] + rng.normal(0, 0.02, 128))
        references.append(reference)
    ReferenceFace.objects.bulk_create(references)
    out(f"{n_faces} faces in {len(photos)} photos, {n_members} members with one selfie each")

    new = [(f.pk, f.encoding) for f in FaceEncoding.objects.filter(photo=photos[0])]
    photo_of = {face_id: photos[0].pk for face_id, _ in new}

    def store_today() -> None:
        with transaction.atomic():
            hits = matching.references_near_faces(new)
            Match.objects.bulk_create(
                [
                    Match(
                        member_id=h.member_id,
                        reference_id=h.reference_id,
                        face_id=h.face_id,
                        distance=h.distance,
                    )
                    for h in hits
                ],
                ignore_conflicts=True,
            )
            transaction.set_rollback(True)

    def store_now() -> None:
        with transaction.atomic():
            assignment.hits_store(matching.references_near_faces(new, widen=assignment.band()), photo_of)
            transaction.set_rollback(True)

    probe = references[0]

    def selfie_today() -> None:
        with transaction.atomic():
            hits = index.faces_near(probe.encoding, threshold=0.49)
            Match.objects.bulk_create(
                [Match(member_id=probe.member_id, reference=probe, face_id=f, distance=d) for f, d in hits],
                ignore_conflicts=True,
            )
            transaction.set_rollback(True)

    def selfie_now() -> None:
        with transaction.atomic():
            reference_match(reference_id=probe.pk, vector=probe.encoding)
            transaction.set_rollback(True)

    rows = []
    for name, today, now in (
        ("a new photo's 2 faces stored and matched", store_today, store_now),
        ("a new selfie matched", selfie_today, selfie_now),
    ):
        (tw, tc), (nw, nc) = timed(today), timed(now)
        rows.append([name, f"{tw:.1f}", f"{tc:.1f}", f"{nw:.1f}", f"{nc:.1f}"])
    table(["step", "today wall ms", "today CPU ms", "issue 14 wall ms", "issue 14 CPU ms"], rows)

    with transaction.atomic():
        assignment.photos_rematch([p.pk for p in photos])
    wall, cpu = time.perf_counter(), time.process_time()
    summary = references_refresh()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out(
        f"references_refresh after an import: {wall:.1f} s wall, {cpu:.1f} s CPU of this process "
        f"({1000 * wall / n_members:.0f} ms per member); {summary.learned_added} learned references added, "
        f"{summary.photos_rematched} photos assigned again"
    )
    wall, cpu = time.perf_counter(), time.process_time()
    references_refresh()
    out(
        f"again with nothing new: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU"
    )


if __name__ == "__main__":
    main()
