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
  (faces.matching.faces_near) and, on the same rows in this process, a
  NumPy float32 full scan; median ms over --queries selfies (new draws of
  stored people), and the ratio;
- cheaper tricks on the exact query: no parallel workers, JIT off, and a
  partial-sum pre-filter (bench-only SQL: the first 32 dimensions' sum as a
  lower bound before the full sum);
- the face index (faces.index) as `build_face_index` makes it (default
  2·√N clusters): build time, then for each probe count the median ms of
  faces.index.faces_near and its recall against the exact query (matches
  found / exact matches, over all queries); then again after
  `build_face_index --cluster` rewrote the table in cluster order
  (faces.index.table_cluster), the recommended set-up;
- a new photo's faces against 5,000 references
  (faces.matching.references_near_faces) vs NumPy, at the smallest size.

Run from the repository root (about 5 minutes on 2 cores with the defaults):

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

import numpy as np
from common import machine, out, setup_django_postgres, table  # noqa: E402 - bench/ is on sys.path

FACES_PER_PERSON = 20
PHOTO_FACES = 2  # synthetic faces per synthetic photo
PREFILTER_DIMS = 32
JIT_QUERIES = 3  # with JIT a million-face query takes half a minute
REFERENCES = 5_000
NEW_PHOTO_FACES = 5


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
    rows = np.zeros(n, dtype=np.dtype(fields))
    rows["n"], rows["l0"], rows["l1"] = 6 + 128, 8, 8
    rows["id"], rows["photo"] = first_id + np.arange(n), photo_ids
    for i in range(4):
        rows[f"lb{i}"], rows[f"b{i}"] = 4, 10 * (i in (1, 2))
    for i in range(128):
        rows[f"lv{i}"], rows[f"v{i}"] = 4, vectors[:, i]
    columns = ", ".join(f'"field{i}"' for i in range(128))
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


def median_ms(fn: object, args_list: list[object]) -> tuple[float, list[object]]:
    times, results = [], []
    for args in args_list:
        started = time.perf_counter()
        results.append(fn(args))  # type: ignore[operator]
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times), results


def session(sql: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)


# --- the measurements --------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=15, help="selfies per size (default 15)")
    parser.add_argument("--probes", type=int, nargs="+", default=[32, 64, 128, 256])
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
        "queries": args.queries,
        "real": {"faces": model.real_faces, "same": model.real_same, "different": model.real_different},
        "synthetic": {"same": check_same, "different": check_different, "faces_per_person": FACES_PER_PERSON},
        "sizes": [],
    }
    loaded = sizes[0] if reused else 0
    for size in sizes:
        started = time.monotonic()
        keep_index = reused and size == sizes[0] and index_built(size)
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
        row["sql_ms"], exact_results = median_ms(exact, list(queries))
        row["numpy_ms"], numpy_results = median_ms(numpy_scan, list(queries))
        agree = all(
            {face for face, _ in e} == set(n.tolist())
            for e, n in zip(exact_results, numpy_results, strict=True)
        )
        row["sql_equals_numpy"] = agree
        row["matches_per_query"] = statistics.mean(len(e) for e in exact_results)
        session("SET max_parallel_workers_per_gather = 0")
        row["sql_serial_ms"], _ = median_ms(exact, list(queries[:5]))
        session("RESET max_parallel_workers_per_gather")
        # The same SQL without the product's SET LOCAL jit = off (JIT compiles it with LLVM).
        row["sql_jit_ms"], _ = median_ms(jit_query(threshold), list(queries[:JIT_QUERIES]))
        row["prefilter_ms"], pre = median_ms(prefilter_query(threshold), list(queries[:5]))
        row["prefilter_equal"] = all(
            {f for f, _ in p} == {f for f, _ in e} for p, e in zip(pre, exact_results[:5], strict=True)
        )

        # The face index as `build_face_index` makes it, measured, then after
        # `--cluster` (index.table_cluster, CLUSTER by cluster), measured again.
        if keep_index:
            row["index_build_s"] = row["cluster_table_s"] = "reused"
            row["clusters"] = FaceCluster.objects.count()
        else:
            started = time.monotonic()
            build = face_index_build()
            row["index_build_s"] = round(time.monotonic() - started, 1)
            row["clusters"] = build.clusters
            analyse_tables()
            row["index"] = measure_index(args.probes, queries, exact_results, threshold, same_person)
            started = time.monotonic()
            index.table_cluster()
            row["cluster_table_s"] = round(time.monotonic() - started, 1)
            analyse_tables()
        row["index_clustered"] = measure_index(args.probes, queries, exact_results, threshold, same_person)
        if size == sizes[0]:
            row["references"] = measure_references(data, rng, model, centres, threshold)
        results["sizes"].append(row)  # type: ignore[attr-defined]
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


def index_built(size: int) -> bool:
    """Whether a default face index of every face is there, with the table clustered by it."""
    from django.db import connection

    from faces.index import default_clusters
    from faces.models import FaceCluster, FaceEncoding

    if (
        FaceCluster.objects.count() != default_clusters(size)
        or FaceEncoding.objects.filter(cluster=None).exists()
    ):
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


def prefilter_query(threshold: float) -> object:
    """Bench-only variant: the first PREFILTER_DIMS squared differences must already be ≤ t²."""
    from django.db import connection

    from faces import matching

    def run(q: np.ndarray) -> list[tuple[int, float]]:
        full = matching.squared_distance_sql(matching.columns("f"), matching.PLACEHOLDERS)
        terms = full.split(" + ")
        partial = " + ".join(terms[:PREFILTER_DIMS])
        values = matching.vector_params(q)
        sql = (
            f"SELECT f.id, {full} AS d FROM faces_faceencoding f "  # noqa: S608
            f"WHERE {partial} <= %s AND {full} <= %s ORDER BY d, f.id"
        )
        t2 = threshold * threshold
        params = [*values, *values[: 2 * PREFILTER_DIMS], t2, *values, t2]
        with connection.cursor() as cursor:
            matching.execute(cursor, sql, params)
            return [(f, float(np.sqrt(max(d, 0)))) for f, d in cursor.fetchall()]

    return run


def measure_index(
    probes: list[int],
    queries: np.ndarray,
    exact_results: list[list[tuple[int, float]]],
    threshold: float,
    same_person: list[set[int]],
) -> list[dict[str, object]]:
    """Median ms and recall against the exact query per probe count.

    `recall` counts every exact match; `recall_same` only the faces of the
    selfie's own (synthetic) person, what a member looks for: the rest are
    other people within the threshold, which the index misses more often
    because they lie in any direction from the selfie.
    """
    from django.test import override_settings

    from faces import index

    rows = []
    exact_total = sum(len(e) for e in exact_results)
    for probe in probes:
        with override_settings(THROWBACK_FACE_INDEX=True, THROWBACK_FACE_INDEX_PROBE=probe):
            index.faces_near(queries[0], threshold=threshold)
            ms, found = median_ms(lambda q: index.faces_near(q, threshold=threshold), list(queries))
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
                "probe": probe,
                "ms": ms,
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
    data: np.ndarray, rng: np.random.Generator, model: FaceModel, centres: np.ndarray, threshold: float
) -> dict[str, object]:
    """A new photo's NEW_PHOTO_FACES faces against REFERENCES references."""
    from django.db import connection

    from faces import matching
    from faces.models import FaceEncoding
    from members.models import Member

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE members_referenceface, members_member CASCADE")
    people = rng.choice(len(centres), REFERENCES, replace=len(centres) < REFERENCES)
    refs = model.faces(rng, centres[people])
    members = [Member(username=f"bench{i}") for i in range(REFERENCES)]
    Member.objects.bulk_create(members, batch_size=1000)
    member_ids = np.array(Member.objects.order_by("id").values_list("id", flat=True))
    fields = [("n", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), ("member", ">i8")]
    fields += [("li", ">i4"), ("image", "S18"), ("lc", ">i4"), ("created", ">i8")]
    fields += [(f"lb{i}", ">i4") if h == 0 else (f"b{i}", ">i4") for i in range(4) for h in (0, 1)]
    fields += [(f"lv{i}", ">i4") if h == 0 else (f"v{i}", ">f4") for i in range(128) for h in (0, 1)]
    rows = np.zeros(REFERENCES, dtype=np.dtype(fields))
    rows["n"], rows["l0"], rows["l1"], rows["li"], rows["lc"] = 4 + 4 + 128, 8, 8, 18, 8
    rows["id"], rows["member"], rows["image"], rows["created"] = (
        np.arange(1, REFERENCES + 1),
        member_ids,
        b"references/x.jpg00",
        0,
    )
    for i in range(4):
        rows[f"lb{i}"], rows[f"b{i}"] = 4, 10 * (i in (1, 2))
    for i in range(128):
        rows[f"lv{i}"], rows[f"v{i}"] = 4, refs[:, i]
    columns = ", ".join(f'"field{i}"' for i in range(128))
    with connection.cursor() as cursor:
        copy_binary(
            cursor,
            f'members_referenceface (id, member_id, image, created, "top", "right", "bottom", "left", {columns})',
            rows,
        )
        cursor.execute("ANALYZE members_referenceface")
    # New photos: NEW_PHOTO_FACES stored faces each, of referenced people.
    photos = []
    for start in range(0, 15 * NEW_PHOTO_FACES, NEW_PHOTO_FACES):
        photos.append(list(range(start + 1, start + NEW_PHOTO_FACES + 1)))
    if FaceEncoding.objects.filter(pk__in=photos[-1]).count() != NEW_PHOTO_FACES:
        raise SystemExit("the smallest size must hold the new photos' faces")
    # The importer hands over the encodings it has just stored (data holds the stored values).
    sql_ms, hits = median_ms(
        lambda ids: matching.references_near_faces([(i, data[i - 1]) for i in ids], threshold=threshold),
        photos,
    )

    def numpy_refs(ids: list[int]) -> list[tuple[int, int]]:
        faces = data[np.array(ids) - 1]
        d2 = ((faces[:, None, :] - refs[None, :, :]) ** 2).sum(-1)
        f, r = np.nonzero(d2 <= np.float32(threshold * threshold))
        return sorted(zip((np.array(ids)[f]).tolist(), (r + 1).tolist(), strict=True))

    numpy_ms, numpy_hits = median_ms(numpy_refs, photos)
    equal = all(
        sorted((h.face_id, h.reference_id) for h in sql) == n for sql, n in zip(hits, numpy_hits, strict=True)
    )
    return {
        "references": REFERENCES,
        "faces": NEW_PHOTO_FACES,
        "sql_ms": sql_ms,
        "numpy_ms": numpy_ms,
        "equal": equal,
    }


def report_size(row: dict[str, object]) -> None:
    out()
    out(
        f"N = {row['n']:,}: table {row['table_mb']} MB, loaded in {row['load_s']} s; "
        f"{row['matches_per_query']:.1f} matches per selfie; SQL = NumPy: {row['sql_equals_numpy']}"
    )
    sql, numpy_ms = float(row["sql_ms"]), float(row["numpy_ms"])  # type: ignore[arg-type]
    table(
        ["query", "median ms", "× NumPy"],
        [
            ["exact generated SQL (faces_near)", f"{sql:.1f}", f"{sql / numpy_ms:.1f}"],
            ["NumPy float32 full scan", f"{numpy_ms:.1f}", "1.0"],
            [
                "exact, max_parallel_workers_per_gather=0",
                f"{row['sql_serial_ms']:.1f}",
                f"{float(row['sql_serial_ms']) / numpy_ms:.1f}",
            ],  # type: ignore[arg-type]
            [
                "exact with PostgreSQL's JIT on",
                f"{row['sql_jit_ms']:.1f}",
                f"{float(row['sql_jit_ms']) / numpy_ms:.1f}",
            ],  # type: ignore[arg-type]
            [
                f"exact + first-{PREFILTER_DIMS}-dims pre-filter (same result: {row['prefilter_equal']})",
                f"{row['prefilter_ms']:.1f}",
                f"{float(row['prefilter_ms']) / numpy_ms:.1f}",  # type: ignore[arg-type]
            ],
        ],
    )
    if row["index_build_s"] == "reused":
        out(f"face index: {row['clusters']} clusters, index and clustered table reused (--reuse)")
    else:
        out(
            f"face index: {row['clusters']} clusters, built in {row['index_build_s']} s, "
            f"table clustered in {row['cluster_table_s']} s"
        )
    for key, title in (("index", "index"), ("index_clustered", "index, --cluster (table in cluster order)")):
        if key in row:
            table(
                [title, "median ms", "× NumPy", "recall, all", "recall, own person", "selfies complete"],
                [
                    [
                        f"probe {r['probe']}",
                        f"{r['ms']:.1f}",
                        f"{r['ms'] / numpy_ms:.2f}",
                        f"{r['recall']:.3f}",
                        f"{r['recall_same']:.3f}",
                        r["queries_complete"],
                    ]
                    for r in row[key]  # type: ignore[attr-defined]
                ],
            )
    if "references" in row:
        refs = row["references"]
        out(
            f"a new photo's {refs['faces']} faces vs {refs['references']:,} references: SQL {refs['sql_ms']:.1f} ms, "  # type: ignore[index]
            f"NumPy {refs['numpy_ms']:.2f} ms, ratio {refs['sql_ms'] / refs['numpy_ms']:.1f}, same pairs: {refs['equal']}"  # type: ignore[index]
        )


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
