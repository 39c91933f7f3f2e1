"""Match speed: the generated distance SQL on PostgreSQL vs a NumPy scan, and the face index.

Synthetic faces distributed like real dlib encodings: the real encodings of
the labelled photos (bench/real_encodings.py) give a mean, a within-person
covariance (each face minus its person's mean) and a between-person
covariance (total minus within); synthetic people are centres drawn from the
between-person Gaussian and their faces centre + within-person noise, both
scaled so the mean same-person and different-person distances equal the
real ones. People have 20 faces on average (Poisson). They are loaded with
binary COPY into a dedicated database (default throwback_bench_i6, never the
test database), growing through --sizes (10k, 100k, 1M); at each size:

- one selfie against N faces: the product's exact query
  (faces.matching.faces_near, with its projected pre-filter) and, on the
  same rows in this process, a NumPy float32 full scan; median ms over
  --queries selfies (new draws of stored people), and the ratio; the
  database backend's CPU time per query beside the wall time (the machine
  is shared: wall time includes waiting for a core);
- variants of the exact query: without the projected pre-filter (the
  128-term sum on every row, bench-only SQL), no parallel workers, JIT on;
- the face index (faces.index) as `build_face_index --cluster` makes it
  (default clusters, the table in cluster order): build time, then for each
  reach (THROWBACK_FACE_INDEX_REACH) the median ms and CPU ms of
  faces.index.faces_near, the clusters it probed and its recall against the
  exact query (matches found / exact matches, over all queries), and for
  comparison the old rule (the 128 nearest clusters, whatever their distance);
- a new photo's faces against 5,000 references with per-reference limits
  (faces.matching.references_near_faces) vs NumPy, at the smallest size.

Run from the repository root (about 10 minutes on 2 cores with the defaults,
most of it loading and indexing the million faces; --reuse skips both when the
database already holds this run's faces and index):

    .venv/bin/python bench/match_speed.py
    .venv/bin/python bench/match_speed.py --sizes 10000 100000 --queries 10
    .venv/bin/python bench/match_speed.py --sizes 1000000 --reuse   # again, on the faces left by a run
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO, machine, out, setup_django_postgres, table  # noqa: E402 - bench/ is on sys.path

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from faces.projection import PROJECTION_SIZE, project  # noqa: E402 - NumPy only, no Django

FACES_PER_PERSON = 20
PHOTO_FACES = 2  # synthetic faces per synthetic photo
JIT_QUERIES = 3  # with JIT a million-face query takes half a minute
REFERENCES = 5_000
NEW_PHOTO_FACES = 5
# Per-reference limits drawn uniformly from this range (faces/limits.py's local scaling spreads them so).
REFERENCE_LIMITS = (0.40, 0.55)
# The index's reach rule at these THROWBACK_FACE_INDEX_REACH values, at most DEFAULT probe clusters each.
REACHES = [0.05, 0.08, 0.1, 0.12, 0.15]
# The earlier rule for comparison: the 128 nearest clusters, whatever their distance.
FIXED_PROBE = 128


# --- the synthetic faces ---------------------------------------------------------
class FaceModel:
    """Gaussian identity centres + within-person noise, fitted to real encodings."""

    def __init__(self, encodings: np.ndarray, labels: np.ndarray) -> None:
        from real_encodings import pair_distances

        x = encodings.astype(np.float64)
        self.mean = x.mean(axis=0)
        people = [label for label in set(labels.tolist()) if (labels == label).sum() >= 2]
        residuals = np.concatenate([x[labels == p] - x[labels == p].mean(axis=0) for p in people])
        counts = np.array([(labels == p).sum() for p in people])
        # Unbiased within covariance: residuals about each person's own mean lose one dof per person.
        within = residuals.T @ residuals / (len(residuals) - len(people))
        total = np.cov(x.T)
        between = total - within
        self.within_root = _sqrt_psd(within)
        self.between_root = _sqrt_psd(between)
        same, different = pair_distances(encodings, labels)
        self.real_same, self.real_different = float(same.mean()), float(different.mean())
        self.real_people, self.real_faces, self.real_counts = len(people), len(x), counts
        # Scale both parts so mean distances match the real ones (fixed-point on a sample).
        self.within_scale = self.between_scale = 1.0
        for _ in range(4):
            s, d = self.sample_distances(np.random.default_rng(99))
            self.within_scale *= self.real_same / s
            target_d2, got_d2 = self.real_different**2, d**2
            w2 = (self.real_same**2) / 1.0
            self.between_scale *= np.sqrt(max(target_d2 - w2, 1e-6) / max(got_d2 - w2, 1e-6))

    def centres(self, rng: np.random.Generator, count: int) -> np.ndarray:
        z = rng.standard_normal((count, len(self.mean)))
        return self.mean + self.between_scale * z @ self.between_root.T

    def faces(self, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
        z = rng.standard_normal(centres.shape)
        return (centres + self.within_scale * z @ self.within_root.T).astype(np.float32)

    def sample_distances(self, rng: np.random.Generator) -> tuple[float, float]:
        centres = self.centres(rng, 400)
        a, b = self.faces(rng, centres), self.faces(rng, centres)
        same = np.linalg.norm(a - b, axis=1).mean()
        different = np.linalg.norm(a - np.roll(b, 1, axis=0), axis=1).mean()
        return float(same), float(different)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0, None))


# --- loading ---------------------------------------------------------------------
def copy_binary(cursor: object, table_sql: str, array: np.ndarray) -> None:
    """COPY a NumPy structured array (big-endian, with length fields) in binary format."""
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
    payload = io.BytesIO(header + array.tobytes() + b"\xff\xff")
    cursor.copy_expert(f"COPY {table_sql} FROM STDIN WITH (FORMAT binary)", payload)  # type: ignore[attr-defined]


def load_faces(first_id: int, vectors: np.ndarray, album_id: int) -> None:
    """Insert faces first_id… with synthetic photos (PHOTO_FACES faces each)."""
    from django.db import connection

    n = len(vectors)
    photo_ids = first_id + np.arange(n) // PHOTO_FACES
    photos = sorted(set(photo_ids.tolist()))
    text = io.StringIO(
        "".join(f"{p}\t{album_id}\tp{p}.jpg\t\t\t{{}}\t\tdone\t\t\t2026-01-01 00:00:00+00\n" for p in photos)
    )
    fields = [("n", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), ("photo", ">i8")]
    fields += [(f"lb{i}", ">i4") if h == 0 else (f"b{i}", ">i4") for i in range(4) for h in (0, 1)]
    fields += [(f"lv{i}", ">i4") if h == 0 else (f"v{i}", ">f4") for i in range(128) for h in (0, 1)]
    fields += [
        (f"lp{i}", ">i4") if h == 0 else (f"p{i}", ">f4") for i in range(PROJECTION_SIZE) for h in (0, 1)
    ]
    fields += [("lsq", ">i4"), ("sq", ">f4")]
    rows = np.zeros(n, dtype=np.dtype(fields))
    rows["n"], rows["l0"], rows["l1"] = 6 + 128 + PROJECTION_SIZE + 1, 8, 8
    rows["id"], rows["photo"] = first_id + np.arange(n), photo_ids
    for i in range(4):
        rows[f"lb{i}"], rows[f"b{i}"] = 4, 10 * (i in (1, 2))
    for i in range(128):
        rows[f"lv{i}"], rows[f"v{i}"] = 4, vectors[:, i]
    # The pc columns as the product computes them (faces.fields.ProjectedEncodingModel).
    projected = project(vectors.astype(np.float64)).astype(np.float32)
    for i in range(PROJECTION_SIZE):
        rows[f"lp{i}"], rows[f"p{i}"] = 4, projected[:, i]
    rows["lsq"], rows["sq"] = 4, (projected.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    columns = ", ".join(
        [*(f'"field{i}"' for i in range(128)), *(f'"pc{i}"' for i in range(PROJECTION_SIZE)), '"pc_norm2"']
    )
    with connection.cursor() as cursor:
        cursor.copy_expert(
            "COPY faces_photo (id, album_id, source_id, file, origin, remote_urls, content_hash, status, "
            "error, claimed_by, created) FROM STDIN",
            text,
        )
        copy_binary(
            cursor, f'faces_faceencoding (id, photo_id, "top", "right", "bottom", "left", {columns})', rows
        )


def analyse_tables() -> None:
    from django.db import connection

    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE faces_faceencoding")
        cursor.execute("VACUUM ANALYZE faces_photo")


def backend_cpu_s() -> float:
    """CPU seconds (user + system) this process's PostgreSQL backend has used so far (same machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn: object, args_list: list[object]) -> tuple[float, float, list[object]]:
    """(median wall ms, mean CPU ms, results) of fn over args_list.

    CPU is this process's plus its database backend's (parallel workers not
    counted): what the query cost, whatever else ran on the machine.
    """
    times, results = [], []
    cpu_started, db_started = time.process_time(), backend_cpu_s()
    for args in args_list:
        started = time.perf_counter()
        results.append(fn(args))  # type: ignore[operator]
        times.append(1000 * (time.perf_counter() - started))
    cpu = time.process_time() - cpu_started + backend_cpu_s() - db_started
    global last_mean_ms
    last_mean_ms = statistics.mean(times)
    return statistics.median(times), 1000 * cpu / len(args_list), results


# The mean wall ms of the last `timed` call (the CPU figure is a mean too).
last_mean_ms = 0.0


def session(sql: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)


# --- the measurements --------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=15, help="selfies per size (default 15)")
    parser.add_argument(
        "--reaches",
        type=float,
        nargs="+",
        default=REACHES,
        help="THROWBACK_FACE_INDEX_REACH values to measure",
    )
    parser.add_argument("--clusters", type=int, help="face index clusters (default: the product's default)")
    parser.add_argument(
        "--index-only",
        action="store_true",
        help="skip the exact query's variants (no pre-filter, serial, JIT): for quick runs of the index rules",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the faces (and face index) a previous run left in the database when they are this run's "
        "(same seed and size): skips the load and the build; for repeated runs at one size",
    )
    parser.add_argument(
        "--database", default=os.environ.get("THROWBACK_BENCH_DATABASE", "throwback_bench_i6")
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sizes = sorted(args.sizes)

    work = Path(tempfile.mkdtemp(prefix="throwback-bench-match-"))
    setup_django_postgres(work, database=args.database)
    import real_encodings
    from django.conf import settings
    from django.db import connection

    from faces import index, matching
    from faces.index import face_index_build
    from faces.models import Album, FaceCluster

    threshold = settings.THROWBACK_MATCH_THRESHOLD
    encodings, labels = real_encodings.load()
    model = FaceModel(encodings, labels)
    check_same, check_different = model.sample_distances(np.random.default_rng(5))
    out("Match speed: faces.matching.faces_near (generated SQL) vs NumPy float32 full scan")
    out(f"machine: {machine()}")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
        cursor.execute("SHOW max_parallel_workers_per_gather")
        parallel = cursor.fetchone()[0]
    out(f"PostgreSQL {pg_version}, max_parallel_workers_per_gather={parallel}, database {args.database}")
    out(
        f"real encodings: {model.real_faces} faces, {model.real_people} people with 2+; mean distance same "
        f"{model.real_same:.3f}, different {model.real_different:.3f}; synthetic: same {check_same:.3f}, "
        f"different {check_different:.3f}"
    )

    rng = np.random.default_rng(2026)
    largest = sizes[-1]
    people = max(1, largest // FACES_PER_PERSON)
    centres = model.centres(rng, people)
    owners = rng.integers(0, people, size=largest)
    data = model.faces(rng, centres[owners])
    # Selfies: new draws of stored people, drawn among the first size's faces so every size has them.
    query_people = owners[rng.choice(sizes[0], args.queries, replace=False)]
    queries = model.faces(rng, centres[query_people])

    reused = args.reuse and holds(data[: sizes[0]])
    if reused:
        # The draws can differ in the last bit between runs (threaded BLAS): use the stored values.
        data[: sizes[0]] = index.read_encodings()[1]
    if not reused:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE faces_facecluster, faces_faceencoding, faces_photo, faces_album, faces_match, "
                "members_referenceface, members_member CASCADE"
            )
    album = Album.objects.get_or_create(source=Album.Source.FOLDER, source_id="bench", title="bench")[0]

    results: dict[str, object] = {
        "machine": machine(),
        "postgresql": pg_version,
        "parallel_workers": parallel,
        "threshold": threshold,
        "default_probe": settings.THROWBACK_FACE_INDEX_PROBE,
        "default_reach": settings.THROWBACK_FACE_INDEX_REACH,
        "commands": [".venv/bin/python bench/match_speed.py " + " ".join(sys.argv[1:])],
        "fixed_probe": FIXED_PROBE,
        "queries": args.queries,
        "real": {"faces": model.real_faces, "same": model.real_same, "different": model.real_different},
        "synthetic": {"same": check_same, "different": check_different, "faces_per_person": FACES_PER_PERSON},
        "sizes": [],
    }
    loaded = sizes[0] if reused else 0
    for size in sizes:
        started = time.monotonic()
        keep_index = (
            reused and size == sizes[0] and index_built(args.clusters or index.default_clusters(size))
        )
        if size > loaded:
            index.face_index_drop()
            load_faces(loaded + 1, data[loaded:size], album.pk)
            loaded = size
            analyse_tables()
        load_s = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_size('faces_faceencoding')")
            table_mb = cursor.fetchone()[0] / 1e6
        ids = np.arange(1, size + 1)
        view = data[:size]
        same_person = [set((np.flatnonzero(owners[:size] == person) + 1).tolist()) for person in query_people]

        def exact(q: np.ndarray) -> list[tuple[int, float]]:
            return matching.faces_near(q, threshold=threshold)

        def numpy_scan(q: np.ndarray, view: np.ndarray = view, ids: np.ndarray = ids) -> np.ndarray:
            diff = view - q
            return ids[np.einsum("ij,ij->i", diff, diff) <= np.float32(threshold * threshold)]

        exact(queries[0])  # warm the cache
        row: dict[str, object] = {"n": size, "table_mb": round(table_mb, 1), "load_s": round(load_s, 1)}
        row["sql_ms"], row["sql_cpu_ms"], exact_results = timed(exact, list(queries))
        row["numpy_ms"], row["numpy_cpu_ms"], numpy_results = timed(numpy_scan, list(queries))
        agree = all(
            {face for face, _ in e} == set(n.tolist())
            for e, n in zip(exact_results, numpy_results, strict=True)
        )
        row["sql_equals_numpy"] = agree
        row["matches_per_query"] = statistics.mean(len(e) for e in exact_results)
        if not args.index_only:
            # The exact query without the projected pre-filter: the 128-term sum on every row.
            row["full_sum_ms"], row["full_sum_cpu_ms"], full = timed(
                full_sum_query(threshold), list(queries[:5])
            )
            row["full_sum_equal"] = all(
                {f for f, _ in p} == {f for f, _ in e} for p, e in zip(full, exact_results[:5], strict=True)
            )
            session("SET max_parallel_workers_per_gather = 0")
            row["sql_serial_ms"], row["sql_serial_cpu_ms"], _ = timed(exact, list(queries[:5]))
            session("RESET max_parallel_workers_per_gather")
            # The same SQL without the product's SET LOCAL jit = off (JIT compiles it with LLVM).
            row["sql_jit_ms"], _, _ = timed(jit_query(threshold), list(queries[:JIT_QUERIES]))

        # The face index as `build_face_index --cluster` makes it (the table in cluster order).
        if keep_index:
            row["index_build_s"] = row["cluster_table_s"] = "reused"
            row["clusters"] = FaceCluster.objects.count()
        else:
            started = time.monotonic()
            build = face_index_build(clusters=args.clusters)
            row["index_build_s"] = round(time.monotonic() - started, 1)
            row["clusters"] = build.clusters
            started = time.monotonic()
            index.table_cluster()
            row["cluster_table_s"] = round(time.monotonic() - started, 1)
            analyse_tables()
        rules = [(reach, settings.THROWBACK_FACE_INDEX_PROBE) for reach in args.reaches]
        rules.append((NEAREST_ONLY, FIXED_PROBE))
        row["index_clustered"] = measure_index(rules, queries, exact_results, threshold, same_person)
        if size == sizes[0]:
            row["references"] = measure_references(data, rng, model, centres)
        results["sizes"].append(row)  # type: ignore[attr-defined]
        if args.json:  # after every size, so a later failure keeps these figures
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1, default=float))
        report_size(row)

    report_growth(results["sizes"])  # type: ignore[arg-type]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return 0


def holds(vectors: np.ndarray) -> bool:
    """Whether the database holds exactly these faces as ids 1… (first and last compared)."""
    from faces.models import FaceEncoding

    n = len(vectors)
    if FaceEncoding.objects.count() != n or n == 0:
        return False
    first, last = FaceEncoding.objects.get(pk=1), FaceEncoding.objects.filter(pk=n).first()
    # Close, not equal: the draws can differ in the last bit between runs (threaded BLAS).
    return (
        last is not None
        and np.allclose(first.encoding, vectors[0], rtol=0, atol=1e-6)
        and np.allclose(last.encoding, vectors[-1], rtol=0, atol=1e-6)
    )


def index_built(clusters: int) -> bool:
    """Whether a face index of `clusters` clusters holding every face is there, with the table clustered by it."""
    from django.db import connection

    from faces.models import FaceCluster, FaceEncoding

    if FaceCluster.objects.count() != clusters or FaceEncoding.objects.filter(cluster=None).exists():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE c.relname = 'faces_faceencoding' AND i.indisclustered"
        )
        return bool(cursor.fetchone()[0])


def jit_query(threshold: float) -> object:
    """The exact query as the product builds it, run with PostgreSQL's default JIT setting."""
    from django.db import connection

    from faces import matching

    def run(q: np.ndarray) -> list[tuple[int, float]]:
        sql, params = matching.faces_near_query(q, threshold=threshold)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [(f, float(np.sqrt(max(d, 0)))) for f, d in cursor.fetchall()]

    return run


def full_sum_query(threshold: float) -> object:
    """The exact query without the projected pre-filter (the 128-term sum on every row)."""
    from django.db import connection

    from faces import matching

    def run(q: np.ndarray) -> list[tuple[int, float]]:
        sql, params = matching.faces_near_query(q, threshold=threshold, prefilter=False)
        with connection.cursor() as cursor:
            matching.execute(cursor, sql, params)
            return [(f, float(np.sqrt(max(d, 0)))) for f, d in cursor.fetchall()]

    return run


# A reach so large that every centroid is within it: the rule is then "the `probe` nearest clusters".
NEAREST_ONLY = 4.0


def measure_index(
    rules: list[tuple[float, int]],
    queries: np.ndarray,
    exact_results: list[list[tuple[int, float]]],
    threshold: float,
    same_person: list[set[int]],
) -> list[dict[str, object]]:
    """Median ms, CPU ms and recall against the exact query per (reach, probe cap) rule.

    `recall` counts every exact match; `recall_same` only the faces of the
    selfie's own (synthetic) person, what a member looks for: the rest are
    other people within the threshold, which the index misses more often
    because they lie in any direction from the selfie.
    """
    from django.test import override_settings

    from faces import index

    rows = []
    exact_total = sum(len(e) for e in exact_results)
    for reach, probe in rules:
        with override_settings(
            THROWBACK_FACE_INDEX=True, THROWBACK_FACE_INDEX_REACH=reach, THROWBACK_FACE_INDEX_PROBE=probe
        ):
            index.faces_near(queries[0], threshold=threshold)
            ms, cpu_ms, found = timed(lambda q: index.faces_near(q, threshold=threshold), list(queries))
            mean_ms = last_mean_ms
            probed = [len(index.probe_clusters(q, threshold=threshold)) for q in queries]
        hits = sum(
            len({f for f, _ in got} & {f for f, _ in want})
            for got, want in zip(found, exact_results, strict=True)
        )
        extra = sum(
            len({f for f, _ in got} - {f for f, _ in want})
            for got, want in zip(found, exact_results, strict=True)
        )
        full = sum(
            {f for f, _ in got} == {f for f, _ in want}
            for got, want in zip(found, exact_results, strict=True)
        )
        own = [{f for f, _ in want} & person for want, person in zip(exact_results, same_person, strict=True)]
        own_found = sum(len({f for f, _ in got} & mine) for got, mine in zip(found, own, strict=True))
        own_total = sum(len(mine) for mine in own)
        rows.append(
            {
                "reach": None if reach == NEAREST_ONLY else reach,
                "probe": probe,
                "clusters_probed": statistics.median(probed),
                "clusters_probed_max": max(probed),
                "ms": ms,
                "mean_ms": mean_ms,
                "cpu_ms": cpu_ms,
                "recall": hits / exact_total if exact_total else 1.0,
                "recall_same": own_found / own_total if own_total else 1.0,
                "same_total": own_total,
                "exact_total": exact_total,
                "queries_complete": f"{full}/{len(queries)}",
                "extra": extra,
            }
        )
    return rows


def measure_references(
    data: np.ndarray, rng: np.random.Generator, model: FaceModel, centres: np.ndarray
) -> dict[str, object]:
    """A new photo's NEW_PHOTO_FACES faces against REFERENCES references, each with its own limit."""
    from django.db import connection

    from faces import matching
    from faces.models import FaceEncoding
    from members.models import Member, ReferenceFace

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE members_referenceface, members_member CASCADE")
    people = rng.choice(len(centres), REFERENCES, replace=len(centres) < REFERENCES)
    refs = model.faces(rng, centres[people])
    limits = rng.uniform(*REFERENCE_LIMITS, size=REFERENCES)
    members = Member.objects.bulk_create(
        [Member(username=f"bench{i}") for i in range(REFERENCES)], batch_size=1000
    )
    references = []
    for member, vector, limit in zip(members, refs, limits.tolist(), strict=True):
        reference = ReferenceFace(member=member, image="references/x.jpg", match_limit=limit)
        reference.set_encoding(vector)
        references.append(reference)
    ReferenceFace.objects.bulk_create(references, batch_size=500)
    reference_ids = np.array([reference.pk for reference in references])
    with connection.cursor() as cursor:
        # As autovacuum leaves a table that stopped changing: the visibility map
        # lets the covering index answer without visiting the table.
        cursor.execute("VACUUM ANALYZE members_referenceface")
    # New photos: NEW_PHOTO_FACES stored faces each, of referenced people.
    photos = []
    for start in range(0, 15 * NEW_PHOTO_FACES, NEW_PHOTO_FACES):
        photos.append(list(range(start + 1, start + NEW_PHOTO_FACES + 1)))
    if FaceEncoding.objects.filter(pk__in=photos[-1]).count() != NEW_PHOTO_FACES:
        raise SystemExit("the smallest size must hold the new photos' faces")
    # The importer hands over the encodings it has just stored (data holds the stored values).
    matching.references_near_faces([(i, data[i - 1]) for i in photos[0]])  # warm the cache
    sql_ms, sql_cpu_ms, hits = timed(
        lambda ids: matching.references_near_faces([(i, data[i - 1]) for i in ids]), photos
    )
    squared_limits = (limits * limits).astype(np.float32)

    def numpy_refs(ids: list[int]) -> list[tuple[int, int]]:
        faces = data[np.array(ids) - 1]
        d2 = ((faces[:, None, :] - refs[None, :, :]) ** 2).sum(-1)
        f, r = np.nonzero(d2 <= squared_limits[None, :])
        return sorted(zip((np.array(ids)[f]).tolist(), reference_ids[r].tolist(), strict=True))

    numpy_ms, numpy_cpu_ms, numpy_hits = timed(numpy_refs, photos)
    # float32 NumPy against the database's double arithmetic: pairs within 1e-6 of a limit may differ.
    equal = all(
        sorted((h.face_id, h.reference_id) for h in sql) == n for sql, n in zip(hits, numpy_hits, strict=True)
    )
    return {
        "references": REFERENCES,
        "faces": NEW_PHOTO_FACES,
        "limits": list(REFERENCE_LIMITS),
        "pairs_found": sum(len(h) for h in hits) / len(photos),
        "sql_ms": sql_ms,
        "sql_cpu_ms": sql_cpu_ms,
        "numpy_ms": numpy_ms,
        "numpy_cpu_ms": numpy_cpu_ms,
        "equal": equal,
    }


def report_size(row: dict[str, Any]) -> None:
    out()
    out(
        f"N = {row['n']:,}: table {row['table_mb']} MB, loaded in {row['load_s']} s; "
        f"{row['matches_per_query']:.1f} matches per selfie; SQL = NumPy: {row['sql_equals_numpy']}"
    )
    numpy_ms = float(row["numpy_ms"])
    variants = [
        ("exact generated SQL (faces_near, projected pre-filter)", "sql"),
        ("NumPy float32 full scan", "numpy"),
        (f"exact without the pre-filter (same result: {row.get('full_sum_equal')})", "full_sum"),
        ("exact, max_parallel_workers_per_gather=0", "sql_serial"),
        ("exact with PostgreSQL's JIT on", "sql_jit"),
    ]
    variants = [(title, key) for title, key in variants if f"{key}_ms" in row]
    table(
        ["query", "median ms", "CPU ms", "× NumPy"],
        [
            [
                title,
                f"{row[f'{key}_ms']:.1f}",
                f"{row[f'{key}_cpu_ms']:.1f}" if f"{key}_cpu_ms" in row else "",
                f"{row[f'{key}_ms'] / numpy_ms:.1f}",
            ]
            for title, key in variants
        ],
    )
    if row["index_build_s"] == "reused":
        out(f"face index: {row['clusters']} clusters, index and clustered table reused (--reuse)")
    else:
        out(
            f"face index: {row['clusters']} clusters, built in {row['index_build_s']} s, "
            f"table clustered in {row['cluster_table_s']} s"
        )
    table(
        [
            "index rule",
            "clusters",
            "median ms",
            "mean ms",
            "CPU ms",
            "× NumPy",
            "recall, all",
            "recall, own",
            "complete",
        ],
        [
            [
                rule_name(r),
                f"{r['clusters_probed']:.0f} (≤ {r['clusters_probed_max']})",
                f"{r['ms']:.1f}",
                f"{r['mean_ms']:.1f}",
                f"{r['cpu_ms']:.1f}",
                f"{r['ms'] / numpy_ms:.2f}",
                f"{r['recall']:.3f}",
                f"{r['recall_same']:.3f}",
                r["queries_complete"],
            ]
            for r in row["index_clustered"]
        ],
    )
    if "references" in row:
        refs = row["references"]
        out(
            f"a new photo's {refs['faces']} faces vs {refs['references']:,} references (limits "
            f"{refs['limits'][0]}-{refs['limits'][1]}): SQL {refs['sql_ms']:.1f} ms (CPU {refs['sql_cpu_ms']:.1f}), "
            f"NumPy {refs['numpy_ms']:.2f} ms, ratio {refs['sql_ms'] / refs['numpy_ms']:.1f}, "
            f"{refs['pairs_found']:.1f} pairs per photo, same pairs: {refs['equal']}"
        )


def rule_name(row: dict[str, Any]) -> str:
    """`reach 0.1` for the reach rule, `nearest 128` for the old fixed probe count."""
    return f"nearest {row['probe']}" if row["reach"] is None else f"reach {row['reach']}"


def report_growth(rows: list[dict[str, object]]) -> None:
    out()
    out("growth with N (exact SQL): " + ", ".join(f"{r['n']:,}: {float(r['sql_ms']):.0f} ms" for r in rows))  # type: ignore[arg-type]
    if len(rows) >= 2:
        n = np.log([float(r["n"]) for r in rows])  # type: ignore[arg-type]
        t = np.log([float(r["sql_ms"]) for r in rows])  # type: ignore[arg-type]
        out(
            f"time ∝ N^{np.polyfit(n, t, 1)[0]:.2f}; µs per face at the largest N: {1000 * float(rows[-1]['sql_ms']) / float(rows[-1]['n']):.2f}"
        )  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
