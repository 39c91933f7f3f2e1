"""The face index: an inverted file of k-means clusters, in plain SQL tables.

Comparing a selfie with every stored face reads the whole face table (about
2.5 s at a million faces). The index splits the faces into clusters around
k-means centroids (`FaceCluster`, the same 128 `real` columns) and records
each face's nearest centroid in `FaceEncoding.cluster`. A selfie is then
compared with the centroids first and with the faces of the clusters within
its reach only, plus every face not yet assigned, so a face stored since
the last build is always found. For the faces it compares, the answer is
exactly the full query's; what it can miss is a face within the threshold
whose cluster was not probed (measured in docs/performance.md).

The reach rule: a match f of the selfie q lies within the threshold t of q,
and its centroid c within the cluster's spread ρ of f, so |q - c| ≤ t + ρ.
The index probes every cluster whose centroid is within t +
THROWBACK_FACE_INDEX_REACH of the selfie, nearest first, at most
THROWBACK_FACE_INDEX_PROBE of them. A fixed probe count reads as many clusters
for a selfie in a crowded part of the face space (where its matches spread
over many clusters) as for a lonely one; the reach reads more where more
clusters can hold matches and fewer elsewhere. With REACH ≥ the largest
cluster radius it would be exact; in 128 dimensions that is the whole index,
so REACH is a measured trade-off (docs/performance.md).

`face_index_build()` (manage.py build_face_index) trains the centroids with
NumPy on the stored faces and assigns every face; `faces_assign()` assigns
new faces when a photo is stored. All distance SQL is in faces/matching.py.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connections, transaction

from faces import matching
from faces.fields import ENCODING_FIELDS, ENCODING_SIZE
from faces.models import FaceCluster, FaceEncoding

# k-means trains on at most this many faces (a random sample), then assigns all.
TRAIN_SAMPLE_MAX = 50_000
TRAIN_ITERATIONS = 10
# Faces scored against the centroids per NumPy step (bounds memory: rows × clusters floats).
ASSIGN_CHUNK = 20_000


@dataclass(frozen=True)
class IndexBuild:
    """What a build did."""

    clusters: int
    faces: int
    unassigned_after: int
    seconds: float


# A selfie with fewer centroids within its reach (few, wide clusters; or far from
# every stored face) still probes this many clusters, topped up with the nearest
# by projected distance: at 10,000 faces in 200 clusters a reach that held one or
# two centroids missed matches the nearest eight held (docs/performance.md).
PROBE_LEAST = 8


def faces_near(
    vector: Sequence[float] | np.ndarray, *, threshold: float, using: str = "default"
) -> list[tuple[int, float]]:
    """(face id, distance) of the stored faces within threshold, through the index.

    Uses the index when THROWBACK_FACE_INDEX is on and it has been built;
    otherwise (and with no centroids) the exact query over every face.
    """
    if settings.THROWBACK_FACE_INDEX:
        clusters = probe_clusters(vector, threshold=threshold, using=using)
        if clusters:
            return matching.faces_near(vector, threshold=threshold, using=using, clusters=clusters)
    return matching.faces_near(vector, threshold=threshold, using=using)


def probe_clusters(
    vector: Sequence[float] | np.ndarray, *, threshold: float, using: str = "default"
) -> list[int]:
    """The clusters the reach rule probes for a selfie (none before the first build).

    Those within reach, nearest first, at most THROWBACK_FACE_INDEX_PROBE;
    then, if fewer than PROBE_LEAST, the nearest others by projected distance.
    """
    reach = threshold + settings.THROWBACK_FACE_INDEX_REACH
    most = settings.THROWBACK_FACE_INDEX_PROBE
    clusters = matching.clusters_within(vector, reach=reach, most=most, using=using)
    least = min(PROBE_LEAST, most)
    if len(clusters) < least:
        # Nearest by the projection only: a floor need not be exact, and a
        # full scan of the centroids' 128 columns would cost more than the probe.
        nearest = matching.clusters_nearest_projected(vector, count=least, using=using)
        clusters += [cluster for cluster in nearest if cluster not in clusters][: least - len(clusters)]
    return clusters


def faces_assign(face_ids: Sequence[int], *, using: str = "default") -> None:
    """Put newly stored faces in their nearest cluster (no-op before the first build)."""
    matching.clusters_assign(face_ids, using=using)


# Clusters per √faces. More, smaller clusters find more of a selfie's matches
# for the same rows read (simulated at 100,000 faces, docs/performance.md), but
# the k-means++ seeding and the build grow with the number of clusters.
CLUSTERS_PER_ROOT = 2


def default_clusters(faces: int) -> int:
    """2·√faces clusters, at least 1: each then holds about √faces / 2 faces."""
    return max(1, round(CLUSTERS_PER_ROOT * math.sqrt(faces)))


def face_index_build(
    *, clusters: int | None = None, seed: int = 0, cluster_table: bool = False, using: str = "default"
) -> IndexBuild:
    """Train centroids on the stored faces and assign every face to its nearest one.

    `clusters` defaults to 2·√(number of faces) (`default_clusters`). The faces are read and the
    centroids trained without locks; replacing the old centroids and writing
    every face's cluster then happens in one transaction holding the match
    lock, so imports and selfie uploads wait for that part only. Faces stored
    during the training are assigned in the same transaction. Deterministic
    for a given seed and set of faces; safe to re-run. With `cluster_table`
    the face table is then rewritten in cluster order (`table_cluster()`).
    """
    started = time.monotonic()
    ids, vectors = read_encodings(using=using)
    count = clusters if clusters is not None else default_clusters(len(ids))
    if count < 1:
        raise ValueError("an index needs at least one cluster")
    count = min(count, len(ids))
    centroids = kmeans(vectors, count, seed=seed) if count else np.empty((0, ENCODING_SIZE), np.float32)
    labels = nearest(vectors, centroids) if count else np.empty(0, np.int64)
    sizes = np.bincount(labels, minlength=count)

    with transaction.atomic(using=using):
        matching.match_lock(using=using)
        old = list(FaceCluster.objects.using(using).values_list("id", flat=True))
        new = []
        for centroid, size in zip(centroids, sizes.tolist(), strict=True):
            cluster = FaceCluster(size=size)
            cluster.set_encoding(centroid)
            new.append(cluster)
        FaceCluster.objects.using(using).bulk_create(new, batch_size=200)
        cluster_ids = np.array([cluster.pk for cluster in new], dtype=np.int64)
        _write_clusters(ids, cluster_ids[labels] if count else labels, using=using)
        # Detaches the faces stored since the read (still in old clusters)...
        FaceCluster.objects.using(using).filter(pk__in=old).delete()
        # ...and assigns them, with any other face left without a cluster.
        leftover = list(FaceEncoding.objects.using(using).filter(cluster=None).values_list("id", flat=True))
        matching.clusters_assign(leftover, using=using)
        unassigned = FaceEncoding.objects.using(using).filter(cluster=None).count()
    if cluster_table and count:
        table_cluster(using=using)
    return IndexBuild(
        clusters=count, faces=len(ids), unassigned_after=unassigned, seconds=time.monotonic() - started
    )


def table_cluster(*, using: str = "default") -> bool:
    """Rewrite the face table in cluster order (PostgreSQL CLUSTER); False elsewhere.

    A probe then reads each cluster's faces from neighbouring pages instead of
    one page per face (measured in docs/performance.md). CLUSTER holds an
    ACCESS EXCLUSIVE lock on the face table while it rewrites it (about a
    minute at a million faces): every query on faces, photo pages included,
    waits. Faces stored later go to the table's end until the next run.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    table = FaceEncoding._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [table, "%(cluster_id)"],
        )
        (name,) = cursor.fetchone()
        # Inside a transaction that stored faces, their deferred foreign-key
        # checks must run first: CLUSTER refuses a table with pending ones.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f'CLUSTER {table} USING "{name}"')
        cursor.execute(f"ANALYZE {table}")
    return True


def projection_refresh(*, using: str = "default") -> int:
    """Recompute the pc columns of every face, centroid and reference from their encodings.

    Needed only when faces/projection.json changed (the system check
    faces.E011 says so); holds the match lock so no match runs on half-updated
    columns. Returns the rows updated.
    """
    from members.models import ReferenceFace

    models = (FaceEncoding, FaceCluster, ReferenceFace)
    with transaction.atomic(using=using):
        matching.match_lock(using=using)
        for model in models:
            matching.projection_refresh(model._meta.db_table, connection=connections[using])
        return sum(model.objects.using(using).count() for model in models)


def face_index_drop(*, using: str = "default") -> int:
    """Remove the index (every face becomes unassigned); returns the clusters removed."""
    with transaction.atomic(using=using):
        matching.match_lock(using=using)
        removed, _ = FaceCluster.objects.using(using).all().delete()
    return removed


# --- NumPy k-means ---------------------------------------------------------------
def nearest(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each vector (squared Euclidean distance, float32)."""
    centroids = centroids.astype(np.float32)
    squared_norms = (centroids * centroids).sum(axis=1)
    result = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), ASSIGN_CHUNK):
        chunk = vectors[start : start + ASSIGN_CHUNK].astype(np.float32)
        # |x - c|² = |x|² - 2 x·c + |c|²; |x|² is the same for every centroid.
        scores = squared_norms[None, :] - 2.0 * chunk @ centroids.T
        result[start : start + ASSIGN_CHUNK] = scores.argmin(axis=1)
    return result


def kmeans(vectors: np.ndarray, count: int, *, seed: int = 0) -> np.ndarray:
    """`count` centroids (float32) by Lloyd's algorithm on a sample of at most TRAIN_SAMPLE_MAX.

    Starts with k-means++ seeding; a cluster that empties is re-seeded with
    the face farthest from its centroid.
    """
    rng = np.random.default_rng(seed)
    if len(vectors) > TRAIN_SAMPLE_MAX:
        vectors = vectors[np.sort(rng.choice(len(vectors), TRAIN_SAMPLE_MAX, replace=False))]
    data = vectors.astype(np.float64)
    centroids = _plus_plus(data, count, rng)
    for _ in range(TRAIN_ITERATIONS):
        labels = nearest(data, centroids)
        sizes = np.bincount(labels, minlength=count)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        sums = np.zeros_like(centroids)
        present = sizes > 0
        sums[present] = np.add.reduceat(data[order], starts[present], axis=0)
        empty = np.flatnonzero(sizes == 0)
        if len(empty):
            residual = ((data - centroids[labels]) ** 2).sum(axis=1)
            farthest = np.argsort(residual)[::-1][: len(empty)]
            sums[empty], sizes[empty] = data[farthest], 1
        centroids = sums / sizes[:, None]
    return centroids.astype(np.float32)


def _plus_plus(data: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds: each next one drawn with probability ∝ squared distance to the nearest seed."""
    seeds = [int(rng.integers(len(data)))]
    closest = ((data - data[seeds[0]]) ** 2).sum(axis=1)
    for _ in range(count - 1):
        total = closest.sum()
        pick = int(rng.choice(len(data), p=closest / total)) if total > 0 else int(rng.integers(len(data)))
        seeds.append(pick)
        closest = np.minimum(closest, ((data - data[pick]) ** 2).sum(axis=1))
    return data[seeds].copy()


# --- reading and writing every face ------------------------------------------------
def read_encodings(*, using: str = "default") -> tuple[np.ndarray, np.ndarray]:
    """(ids int64, encodings float32 n×128) of every stored face, in id order.

    On PostgreSQL one binary COPY parsed by NumPy (fixed-width rows, since
    no column is null); elsewhere the ORM.
    """
    connection = connections[using]
    table = FaceEncoding._meta.db_table
    if connection.vendor != "postgresql":
        rows = list(FaceEncoding.objects.using(using).order_by("id").values_list("id", *ENCODING_FIELDS))
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        vectors = np.array([row[1:] for row in rows], dtype=np.float32).reshape(len(rows), ENCODING_SIZE)
        return ids, vectors
    names = ", ".join(f'"{column}"' for column in ENCODING_FIELDS)
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f'COPY (SELECT "id", {names} FROM {table} ORDER BY "id") TO STDOUT WITH (FORMAT binary)',  # noqa: S608
            buffer,
        )
    # Binary COPY: 11-byte signature, 4-byte flags, 4-byte extension length (0),
    # then per row a 2-byte field count and per field a 4-byte length and its
    # bytes (big-endian); a 2-byte -1 ends the data.
    row = np.dtype(
        [("n", ">i2"), ("id_len", ">i4"), ("id", ">i8")]
        + [
            (f"len{i}", ">i4") if half == 0 else (f"v{i}", ">f4")
            for i in range(ENCODING_SIZE)
            for half in (0, 1)
        ]
    )
    raw = buffer.getbuffer()[19:-2]
    parsed = np.frombuffer(raw, dtype=row)
    ids = parsed["id"].astype(np.int64)
    vectors = np.stack([parsed[f"v{i}"] for i in range(ENCODING_SIZE)], axis=1).astype(np.float32)
    return ids, vectors


def _write_clusters(ids: np.ndarray, cluster_ids: np.ndarray, *, using: str) -> None:
    """Set cluster_id of each face id (faces deleted meanwhile are skipped)."""
    connection = connections[using]
    table = FaceEncoding._meta.db_table
    if connection.vendor != "postgresql":
        by_cluster: dict[int, list[int]] = {}
        for face_id, cluster_id in zip(ids.tolist(), cluster_ids.tolist(), strict=True):
            by_cluster.setdefault(cluster_id, []).append(face_id)
        for cluster_id, face_ids in by_cluster.items():
            for start in range(0, len(face_ids), 500):
                FaceEncoding.objects.using(using).filter(pk__in=face_ids[start : start + 500]).update(
                    cluster_id=cluster_id
                )
        return
    text = io.StringIO(
        "".join(f"{f}\t{c}\n" for f, c in zip(ids.tolist(), cluster_ids.tolist(), strict=True))
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE face_index_assignment (face bigint, cluster bigint) ON COMMIT DROP"
        )
        cursor.copy_expert("COPY face_index_assignment FROM STDIN", text)
        cursor.execute(
            f'UPDATE {table} f SET "cluster_id" = a.cluster FROM face_index_assignment a '  # noqa: S608
            'WHERE f."id" = a.face AND f."cluster_id" IS DISTINCT FROM a.cluster'
        )
        cursor.execute("DROP TABLE face_index_assignment")
