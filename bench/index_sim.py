"""The face index's design choices simulated in NumPy (no database): clusters, probe, exact pruning.

On the match benchmark's synthetic faces (bench/match_speed.py's FaceModel,
same seed) and the product's k-means (faces.index.kmeans / nearest), for each
number of clusters K: the faces a probe reads and the recall against the exact
answer (all matches, and the selfie's own person's), probing the nearest
centroids (what faces.index does) or ordering the clusters by the exact
lower bound below; and how many clusters that bound could rule out.

The bound: every face sits in its nearest centroid's cluster, so a face of
cluster c is on c's side of the bisector between c and any other centroid j,
and its distance to the selfie q is at least
max_j (|q-c|² - |q-j|²) / (2|c-j|). A cluster whose bound exceeds the
threshold cannot hold a match, so probing only the others is exact; the
"exact pruning" column is the share of faces in clusters it cannot rule out.

    .venv/bin/python bench/index_sim.py --faces 100000 --clusters 316 632 1000
    .venv/bin/python bench/index_sim.py --faces 1000000 --clusters 2000 4000 --reach 0.05 0.1 0.15

With --reach (issue 15) it simulates the reach rule instead (faces.index.probe_clusters
without the cap and the top-up): for each THROWBACK_FACE_INDEX_REACH, the
clusters whose centroid is within threshold + reach, the faces they hold and
the recall; k-means then trains on max(50,000, 25·K) faces.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from common import REPO, out, table  # noqa: E402 - bench/ is on sys.path

FRACTIONS = [0.01, 0.02, 0.032, 0.064, 0.128]  # of the clusters, probed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--clusters", type=int, nargs="+", default=[316, 632, 1000])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--reach", type=float, nargs="+", help="simulate the reach rule at these reaches")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "throwback.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    import real_encodings
    from match_speed import FACES_PER_PERSON, FaceModel

    from faces.index import kmeans, nearest

    threshold = 0.49
    model = FaceModel(*real_encodings.load())
    rng = np.random.default_rng(2026)
    n = args.faces
    people = max(1, n // FACES_PER_PERSON)
    centres = model.centres(rng, people)
    owners = rng.integers(0, people, size=n)
    data = model.faces(rng, centres[owners])
    query_people = owners[rng.choice(min(n, 10_000), args.queries, replace=False)]
    queries = model.faces(rng, centres[query_people])
    exact = [np.flatnonzero(((data - q) ** 2).sum(axis=1) <= threshold * threshold) for q in queries]
    own = [e[owners[e] == p] for e, p in zip(exact, query_people, strict=True)]
    out(f"{n:,} synthetic faces, {args.queries} selfies, {np.mean([len(e) for e in exact]):.1f} matches each")
    if args.reach:
        return simulate_reach(args, data, queries, exact, own)
    for k in args.clusters:
        started = time.monotonic()
        centroids = kmeans(data, k)
        labels = nearest(data, centroids)
        seconds = time.monotonic() - started
        sizes = np.bincount(labels, minlength=k)
        c64 = centroids.astype(np.float64)
        apart = np.sqrt(((c64[:, None] - c64[None]) ** 2).sum(-1))
        np.fill_diagonal(apart, np.inf)
        by_distance, by_bound, survivors = [], [], []
        for q in queries:
            d2 = ((c64 - q.astype(np.float64)) ** 2).sum(axis=1)
            # 1e-4 of slack on the squared distances covers float32 rounding in the assignment.
            bound = np.maximum(((d2[:, None] - d2[None, :] - 1e-4) / (2 * apart)).max(axis=1), 0)
            by_distance.append(np.argsort(d2, kind="stable"))
            by_bound.append(np.argsort(bound, kind="stable"))
            survivors.append(sizes[bound <= threshold].sum() / n)
        rows = []
        for fraction in FRACTIONS:
            probe = max(1, round(fraction * k))
            row: list[object] = [f"{probe} ({fraction:.1%})"]
            for orders in (by_distance, by_bound):
                read = found = found_own = 0
                for order, e, o in zip(orders, exact, own, strict=True):
                    chosen = np.isin(labels, order[:probe])
                    read += sizes[order[:probe]].sum()
                    found += chosen[e].sum()
                    found_own += chosen[o].sum()
                total, total_own = sum(len(e) for e in exact), sum(len(o) for o in own)
                row += [f"{read / len(queries):,.0f}", f"{found / total:.3f}", f"{found_own / total_own:.3f}"]
            rows.append(row)
        out()
        out(
            f"K = {k} clusters ({n / k:.0f} faces each), k-means in {seconds:.0f} s; exact pruning keeps "
            f"{np.mean(survivors):.1%} of the faces (fewest {np.min(survivors):.1%})"
        )
        table(
            [
                "probe",
                "faces read",
                "recall all",
                "own",
                "by bound: faces read",
                "recall all",
                "own",
            ],
            rows,
        )
    return 0


def simulate_reach(
    args: argparse.Namespace,
    data: np.ndarray,
    queries: np.ndarray,
    exact: list[np.ndarray],
    own: list[np.ndarray],
) -> int:
    """Faces read and recall of the reach rule per number of clusters and reach."""
    from faces import index

    threshold = 0.49
    total, total_own = sum(len(e) for e in exact), sum(len(o) for o in own)
    for k in args.clusters:
        started = time.monotonic()
        index.TRAIN_SAMPLE_MAX = max(50_000, 25 * k)
        centroids = index.kmeans(data, k)
        labels = index.nearest(data, centroids)
        seconds = time.monotonic() - started
        sizes = np.bincount(labels, minlength=k)
        spread = np.sqrt(((data - centroids[labels]) ** 2).sum(axis=1))
        rows = []
        for reach in args.reach:
            probed = read = found = found_own = 0
            for q, e, o in zip(queries, exact, own, strict=True):
                distance = np.sqrt(((centroids.astype(np.float64) - q) ** 2).sum(axis=1))
                chosen_clusters = np.flatnonzero(distance <= threshold + reach)
                chosen = np.isin(labels, chosen_clusters)
                probed += len(chosen_clusters)
                read += sizes[chosen_clusters].sum()
                found += chosen[e].sum()
                found_own += chosen[o].sum()
            n = len(queries)
            rows.append(
                [
                    reach,
                    f"{probed / n:.0f}",
                    f"{read / n:,.0f}",
                    f"{found / total:.4f}",
                    f"{found_own / total_own:.4f}",
                ]
            )
        out()
        out(
            f"K = {k} clusters, k-means in {seconds:.0f} s; face to its centroid: median {np.median(spread):.3f}"
        )
        table(["reach", "clusters (mean)", "faces read (mean)", "recall all", "own"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
