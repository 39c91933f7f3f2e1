"""The generated Euclidean-distance SQL: the one place it is built.

A face matches a reference when the Euclidean distance between their
128-d encodings is at most the reference's own limit (`match_limit`, set by
faces/limits.py; `faces_near` takes it as `threshold`). Comparing the sum of squared
differences with threshold² gives the same answer as sqrt(...) < threshold
without the square root. Every float reaches the database as a bound
parameter; the SQL text depends only on column names, so no input can change
its shape. The same SQL runs on PostgreSQL and SQLite.

Every WHERE compares the short projected distance first (the pc columns,
faces/projection.py, expanded as |Px|² - 2 Px·Pq + |Pq|²): it is never larger
than the full distance, so a row it rejects cannot match, and PostgreSQL
evaluates the 128-term sum only for the few rows it keeps (an AND stops at its
first false operand).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from faces.fields import ENCODING_FIELDS, ENCODING_SIZE, PROJECTION_FIELDS, PROJECTION_NORM_FIELD
from faces.projection import PROJECTION_SLACK, project
from faces.projection import axes as projection_axes


@dataclass(frozen=True)
class Hit:
    """A face within (widen ×) the limit of a reference."""

    face_id: int
    reference_id: int
    member_id: int
    distance: float
    limit: float = 0.0

    @property
    def within(self) -> bool:
        """Within the reference's own limit (not only the widened one)."""
        return self.distance <= self.limit


def squared_distance_sql(left: Sequence[str], right: Sequence[str]) -> str:
    """Sum of squared differences between two lists of 128 SQL operands.

    Operands are column references or `%s` placeholders; each appears twice,
    so a placeholder side needs its parameters twice (see `vector_params`).
    """
    if len(left) != ENCODING_SIZE or len(right) != ENCODING_SIZE:
        raise ValueError(f"both sides need {ENCODING_SIZE} operands")
    return _sum_of_squares(left, right)


def projected_distance_sql(alias: str) -> str:
    """A row's part of the projected squared distance: |Px|² - 2 Px·Pq (PROJECTION_SIZE placeholders).

    Plus |Pq|² it is a lower bound of the full sum (faces/projection.py), so
    `projected_distance_sql(a) <= %s` with `projected_bound(q, limit)` keeps
    every row within limit. Its parameters come from `projected_params`.
    """
    products = " + ".join(f"{column} * %s" for column in projected_columns(alias))
    return f'{alias}."{PROJECTION_NORM_FIELD}" + {products}'


def _sum_of_squares(left: Sequence[str], right: Sequence[str]) -> str:
    return " + ".join(f"({a} - {b}) * ({a} - {b})" for a, b in zip(left, right, strict=True))


def columns(alias: str) -> list[str]:
    """The 128 encoding columns of a table alias, quoted."""
    return [f'{alias}."{column}"' for column in ENCODING_FIELDS]


def projected_columns(alias: str) -> list[str]:
    """The pc columns of a table alias, quoted."""
    return [f'{alias}."{column}"' for column in PROJECTION_FIELDS]


PLACEHOLDERS = ["%s"] * ENCODING_SIZE


def projected_params(vector: Sequence[float] | np.ndarray) -> list[float]:
    """Parameters of `projected_distance_sql` for vector: -2 × each projected coordinate."""
    return [-2.0 * value for value in _projected(vector).tolist()]


def projected_bound(vector: Sequence[float] | np.ndarray, limit: float) -> float:
    """What `projected_distance_sql` is compared with for vector and a limit: limit² + slack - |Pq|²."""
    return limit * limit + projected_offset(vector)


def projected_offset(vector: Sequence[float] | np.ndarray) -> float:
    """slack - |Pq|²: added to a limit² computed in SQL (per-reference limits)."""
    return PROJECTION_SLACK - float((_projected(vector) ** 2).sum())


def _projected(vector: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(vector, dtype=np.float64)
    if values.shape != (ENCODING_SIZE,) or not np.isfinite(values).all():
        raise ValueError(f"an encoding is {ENCODING_SIZE} finite numbers")
    return project(values)


def vector_params(vector: Sequence[float] | np.ndarray) -> list[float]:
    """Parameters for a placeholder side: each value twice, in operand order."""
    values = np.asarray(vector, dtype=np.float64)
    if values.shape != (ENCODING_SIZE,) or not np.isfinite(values).all():
        raise ValueError(f"an encoding is {ENCODING_SIZE} finite numbers")
    return [value for value in values.tolist() for _ in range(2)]


def _table(model_label: str) -> str:
    from django.apps import apps

    table: str = apps.get_model(model_label)._meta.db_table
    return table


def faces_near(
    vector: Sequence[float] | np.ndarray,
    *,
    threshold: float,
    using: str = "default",
    face_ids: Iterable[int] | None = None,
    clusters: Sequence[int] | None = None,
) -> list[tuple[int, float]]:
    """(face id, distance) of every stored photo face within threshold of vector.

    One query over all faces (or only face_ids), closest first. With
    `clusters` (the face index, faces/index.py) only faces assigned to one of
    those clusters or to none are compared: for them the answer is exactly
    the full query's.
    """
    if face_ids is not None:
        face_ids = list(face_ids)
        if not face_ids:
            return []
    vendor = connections[using].vendor
    sql, params = faces_near_query(
        vector, threshold=threshold, face_ids=face_ids, clusters=clusters, vendor=vendor
    )
    with connections[using].cursor() as cursor:
        execute(cursor, sql, params)
        return [(face_id, float(np.sqrt(max(d, 0.0)))) for face_id, d in cursor.fetchall()]


def faces_near_query(
    vector: Sequence[float] | np.ndarray,
    *,
    threshold: float,
    face_ids: Sequence[int] | None = None,
    clusters: Sequence[int] | None = None,
    prefilter: bool = True,
    vendor: str = "postgresql",
) -> tuple[str, list[float | int]]:
    """The SQL and parameters of `faces_near` (the benchmarks run variants of it).

    `prefilter=False` leaves out the projected pre-filter: the same rows,
    with the 128-term sum on every one (for tests and benchmarks). With
    `clusters` (and the pre-filter) the query has two steps: the faces of
    those clusters (or of none) that pass the pre-filter, read from the
    covering index on (cluster, id, pc…) alone, then the 128-term sum for
    those ids only (`vendor` picks the one spelling PostgreSQL plans that way).
    """
    distance = squared_distance_sql(columns("f"), PLACEHOLDERS)
    vector_values = vector_params(vector)
    if clusters is not None and prefilter and face_ids is None:
        inner, inner_params = _projected_ids_in_clusters(vector, threshold=threshold, clusters=clusters)
        # PostgreSQL: an array of ids makes the outer step an index scan on the
        # primary key; as `IN (subquery)` it may plan a hash join over every face.
        restrict = f"f.id = ANY(ARRAY({inner}))" if vendor == "postgresql" else f"f.id IN ({inner})"
        params: list[float | int] = [*vector_values, *inner_params, *vector_values, threshold * threshold]
        sql = (
            f"SELECT f.id, {distance} AS d FROM {_table('faces.FaceEncoding')} f "  # noqa: S608
            f"WHERE {restrict} AND {distance} <= %s ORDER BY d, f.id"
        )
        return sql, params
    ids: list[int] = []
    restriction = ""
    if face_ids is not None:
        ids = list(face_ids)
        restriction = f"f.id IN ({', '.join(['%s'] * len(ids))}) AND "
    if clusters is not None:
        ids += list(clusters)
        listed = f'f."cluster_id" IN ({", ".join(["%s"] * len(clusters))}) OR ' if clusters else ""
        restriction += f'({listed}f."cluster_id" IS NULL) AND '
    pre, pre_params = "", []
    if prefilter:
        pre, pre_params = (
            f"{projected_distance_sql('f')} <= %s AND ",
            [*projected_params(vector), projected_bound(vector, threshold)],
        )
    # Parameters in text order: SELECT's distance, the id filters, the
    # projected pre-filter, WHERE's distance.
    params = [*vector_values, *ids, *pre_params, *vector_values, threshold * threshold]
    # Only column names and placeholders are formatted in; values are bound.
    sql = (
        f"SELECT f.id, {distance} AS d FROM {_table('faces.FaceEncoding')} f "  # noqa: S608
        f"WHERE {restriction}{pre}{distance} <= %s ORDER BY d, f.id"
    )
    return sql, params


def _projected_ids_in_clusters(
    vector: Sequence[float] | np.ndarray, *, threshold: float, clusters: Sequence[int]
) -> tuple[str, list[float | int]]:
    """Ids of the faces in `clusters` or in none whose projection is within threshold (+ slack).

    Two branches, so each is a plain scan of the covering index (an OR of
    both conditions would be a bitmap scan of the table).
    """
    table = _table("faces.FaceEncoding")
    projected = projected_distance_sql("n")
    bound_params = [*projected_params(vector), projected_bound(vector, threshold)]
    listed = ", ".join(["%s"] * len(clusters))
    branches, params = [], []
    if clusters:
        in_clusters = f'SELECT n.id FROM {table} n WHERE n."cluster_id" IN ({listed}) AND {projected} <= %s'  # noqa: S608
        branches.append(in_clusters)
        params += [*clusters, *bound_params]
    branches.append(f'SELECT n.id FROM {table} n WHERE n."cluster_id" IS NULL AND {projected} <= %s')  # noqa: S608
    params += bound_params
    return " UNION ALL ".join(branches), params


# PostgreSQL's JIT compiles the 128-term expression with LLVM on every query
# whose estimated cost passes jit_above_cost; at a million faces compiling
# took longer than running the whole scan without it (docs/performance.md).
NO_JIT = "SET LOCAL jit = off; "


def execute(cursor: CursorWrapper, sql: str, params: Sequence[float | int]) -> None:
    """Run a distance query; on PostgreSQL without JIT compilation.

    Both statements travel in one simple-protocol message, which PostgreSQL
    runs as one transaction even in autocommit mode, so SET LOCAL covers the
    query (and, inside an atomic block, the rest of that transaction).
    """
    if cursor.db.vendor == "postgresql":
        sql = NO_JIT + sql
    cursor.execute(sql, params)


def nearest_clusters(
    vector: Sequence[float] | np.ndarray, *, count: int, using: str = "default"
) -> list[int]:
    """Ids of the `count` face-index centroids closest to vector, closest first."""
    distance = squared_distance_sql(columns("c"), PLACEHOLDERS)
    sql = f"SELECT c.id FROM {_table('faces.FaceCluster')} c ORDER BY {distance}, c.id LIMIT %s"  # noqa: S608
    with connections[using].cursor() as cursor:
        execute(cursor, sql, [*vector_params(vector), count])
        return [cluster_id for (cluster_id,) in cursor.fetchall()]


def clusters_nearest_projected(
    vector: Sequence[float] | np.ndarray, *, count: int, using: str = "default"
) -> list[int]:
    """Ids of the `count` centroids closest to vector by projected distance (cheap, approximate)."""
    projected = projected_distance_sql("c")
    sql = f"SELECT c.id FROM {_table('faces.FaceCluster')} c ORDER BY {projected}, c.id LIMIT %s"  # noqa: S608
    with connections[using].cursor() as cursor:
        execute(cursor, sql, [*projected_params(vector), count])
        return [cluster_id for (cluster_id,) in cursor.fetchall()]


def clusters_within(
    vector: Sequence[float] | np.ndarray, *, reach: float, most: int, using: str = "default"
) -> list[int]:
    """Ids of the face-index centroids within `reach` of vector, closest first, at most `most`.

    The projected pre-filter skips the 128-term sum for the centroids that
    are clearly out of reach, as it does for faces.
    """
    distance = squared_distance_sql(columns("c"), PLACEHOLDERS)
    projected = projected_distance_sql("c")
    sql = (
        f"SELECT c.id, {distance} AS d FROM {_table('faces.FaceCluster')} c "  # noqa: S608
        f"WHERE {projected} <= %s AND {distance} <= %s ORDER BY d, c.id LIMIT %s"
    )
    values = vector_params(vector)
    params = [
        *values,
        *projected_params(vector),
        projected_bound(vector, reach),
        *values,
        reach * reach,
        most,
    ]
    with connections[using].cursor() as cursor:
        execute(cursor, sql, params)
        return [cluster_id for cluster_id, _ in cursor.fetchall()]


def clusters_assign(face_ids: Sequence[int], *, using: str = "default") -> None:
    """Set each listed face's cluster to its nearest centroid (null when there are none).

    One UPDATE; the centroid table is small, so each face costs one short scan.
    """
    if not face_ids:
        return
    faces, clusters = _table("faces.FaceEncoding"), _table("faces.FaceCluster")
    distance = squared_distance_sql(columns("c"), columns(faces))
    id_list = ", ".join(["%s"] * len(face_ids))
    # The distance is a column of a derived table because SQLite does not
    # resolve the outer row's columns in a subquery's ORDER BY.
    sql = (
        f'UPDATE {faces} SET "cluster_id" = ('  # noqa: S608 - names and placeholders only
        f"SELECT n.id FROM (SELECT c.id AS id, {distance} AS d FROM {clusters} c) n ORDER BY n.d, n.id LIMIT 1"
        f") WHERE id IN ({id_list})"
    )
    with connections[using].cursor() as cursor:
        execute(cursor, sql, list(face_ids))


# New faces compared per references_near_faces statement (each adds 2 × 128 bound values).
REFERENCE_BATCH = 16


def references_near_faces(
    faces: Sequence[tuple[int, Sequence[float] | np.ndarray]], *, widen: float = 1.0, using: str = "default"
) -> list[Hit]:
    """Every (face, reference) pair within widen × the reference's limit, for a batch of faces.

    Each reference's own `match_limit` is compared in the WHERE clause (squared,
    as the distance is); `widen` > 1 also returns the faces just outside it
    ("Is this you?", faces.services.assignment). `faces` are (face id,
    encoding) pairs of stored faces, bound as parameters, not read back.
    Each face is one statement joined by UNION ALL, in two steps: the ids of
    the references whose projection is within their limit (limit² + slack -
    |Pq|², read from the covering index on (id, match_limit, pc…) alone), then
    the 128-term sum for those only, with the same arithmetic as `faces_near`
    (column minus value), written once per face. A column-to-column join
    instead casts the face's columns for every pair and cost about 1.5× as
    much per pair (docs/performance.md); the arithmetic, and so every
    distance, is the same.
    """
    if not faces:
        return []
    rows = sorted(faces, key=lambda face: face[0])
    table = _table("members.ReferenceFace")
    distance = squared_distance_sql(columns("r"), PLACEHOLDERS)
    # The per-reference rule: each face is compared with its reference's own
    # limit, first the projection, then the full distance.
    near = f'SELECT p.id FROM {table} p WHERE {projected_distance_sql("p")} <= p."match_limit" * p."match_limit" * %s + %s'  # noqa: S608
    vendor = connections[using].vendor
    restrict = f"r.id = ANY(ARRAY({near}))" if vendor == "postgresql" else f"r.id IN ({near})"
    one_face = (
        "SELECT * FROM ("  # noqa: S608
        f'SELECT %s AS face, r.id AS reference, r.member_id AS member, {distance} AS d, r."match_limit" AS l '
        f"FROM {table} r WHERE {restrict}) pairs WHERE pairs.d <= pairs.l * pairs.l * %s"
    )
    hits: list[Hit] = []
    for start in range(0, len(rows), REFERENCE_BATCH):
        chunk = rows[start : start + REFERENCE_BATCH]
        params: list[float | int] = []
        for face_id, encoding in chunk:
            bound = [widen * widen, projected_offset(encoding)]
            params += [face_id, *vector_params(encoding), *projected_params(encoding), *bound, widen * widen]
        sql = " UNION ALL ".join([one_face] * len(chunk)) + " ORDER BY face, reference"
        with connections[using].cursor() as cursor:
            execute(cursor, sql, params)
            hits += [
                Hit(
                    face_id=f,
                    reference_id=r,
                    member_id=m,
                    distance=float(np.sqrt(max(d, 0.0))),
                    limit=float(lim),
                )
                for f, r, m, d, lim in cursor.fetchall()
            ]
    return hits


def projection_refresh(table: str, *, connection: BaseDatabaseWrapper) -> None:
    """Recompute the pc columns of every row of `table` from its encoding (one UPDATE).

    For the migration that added the columns and after a new projection
    file; `connection` may be a migration's schema_editor.connection.
    """
    axes = np.asarray(projection_axes(), dtype=np.float64)
    assignments = []
    params: list[float] = []
    for column, row in zip(PROJECTION_FIELDS, axes, strict=True):
        assignments.append(f'"{column}" = ' + " + ".join(f'%s * "{name}"' for name in ENCODING_FIELDS))
        params += row.tolist()
    square = " + ".join(f'CAST("{column}" AS double precision) * "{column}"' for column in PROJECTION_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {', '.join(assignments)}", params)  # noqa: S608 - names only
        # A second statement: SET expressions see the row as it was before.
        cursor.execute(f'UPDATE {table} SET "{PROJECTION_NORM_FIELD}" = {square}')  # noqa: S608 - names only
        if connection.vendor == "postgresql":
            # Rows stored in the same transaction leave deferred foreign-key
            # checks pending, and PostgreSQL refuses to index a table with
            # pending ones (the migrations add an index next): run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


# An arbitrary constant naming Throwback's matching lock in PostgreSQL.
MATCH_LOCK_KEY = 0x7468726F  # "thro"


def match_lock(using: str = "default") -> None:
    """Serialise match writers until the current transaction ends.

    A photo's new faces are matched against the references committed so far,
    and a new reference against the faces committed so far; without a lock, a
    reference and a photo committed at the same moment could each miss the
    other. PostgreSQL takes a transaction-level advisory lock; SQLite already
    lets one writer at a time. Call inside transaction.atomic().
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [MATCH_LOCK_KEY])
