"""Property tests (hypothesis) for the generated distance SQL in faces/matching.py.

On PostgreSQL and on SQLite, for random and edge-case vectors, the distances
the SQL returns equal NumPy's Euclidean distance of the stored values within
1e-5, the threshold cuts where NumPy says it should, and no input changes
the SQL's text: it depends only on the column names (and how many ids).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.db import connections
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from faces import matching
from faces.fields import ENCODING_SIZE
from faces.models import FaceEncoding, Match
from faces.projection import PROJECTION_SIZE
from members.models import ReferenceFace
from tests.factories import AlbumFactory, MemberFactory, PhotoFactory, face_with

DATABASES = ["default", "sqlite"]
pytestmark = pytest.mark.django_db(databases=DATABASES)

TOLERANCE = 1e-5
# dlib's encodings lie well inside ±1; the largest distance here is 2·√128 ≈ 22.6.
element = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, width=32)
random_vector = st.lists(element, min_size=ENCODING_SIZE, max_size=ENCODING_SIZE).map(
    lambda values: np.asarray(values, dtype=np.float32)
)


def _constant(value: float) -> np.ndarray:
    return np.full(ENCODING_SIZE, value, dtype=np.float32)


def _one_hot(index: int, value: float) -> np.ndarray:
    vector = np.zeros(ENCODING_SIZE, dtype=np.float32)
    vector[index] = value
    return vector


EDGE_VECTORS = [
    _constant(0.0),
    _constant(-0.0),
    _constant(1.0),
    _constant(-1.0),
    _constant(1e-38),  # near float32's smallest normal
    _constant(np.float32(1.4e-45)),  # float32's smallest subnormal
    _one_hot(0, 1.0),
    _one_hot(127, -1.0),
    np.linspace(-1, 1, ENCODING_SIZE, dtype=np.float32),
    np.asarray([(-1.0) ** i * 0.5 for i in range(ENCODING_SIZE)], dtype=np.float32),
]
vector = st.one_of(random_vector, st.sampled_from(EDGE_VECTORS))
property_settings = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def reference_distance(a: np.ndarray, b: np.ndarray) -> float:
    """NumPy's Euclidean distance of the stored (float32) values, in float64."""
    return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))


def _reset(using: str) -> None:
    Match.objects.using(using).all().delete()
    FaceEncoding.objects.using(using).all().delete()
    ReferenceFace.objects.using(using).all().delete()


def _faces(using: str, vectors: list[np.ndarray]) -> list[int]:
    album = AlbumFactory.build()
    album.save(using=using)
    photo = PhotoFactory.build(album=album)
    photo.save(using=using)
    return [face_with(photo, v, using=using).pk for v in vectors]


def _as_stored(using: str, ids: list[int]) -> list[tuple[int, np.ndarray]]:
    """(id, encoding) of stored faces, as the importer hands them to references_near_faces."""
    return [(pk, FaceEncoding.objects.using(using).get(pk=pk).encoding) for pk in ids]


def _reference(using: str, vector: np.ndarray, *, limit: float = 0.5) -> ReferenceFace:
    member = MemberFactory.build()
    member.save(using=using)
    reference = ReferenceFace(
        member=member, image="references/x.jpg", top=0, right=1, bottom=1, left=0, match_limit=limit
    )
    reference.set_encoding(vector)
    reference.save(using=using)
    return reference


@pytest.mark.parametrize("using", DATABASES)
@property_settings
@given(probe=vector, stored=st.lists(vector, min_size=1, max_size=4))
@example(probe=EDGE_VECTORS[0], stored=[EDGE_VECTORS[0], EDGE_VECTORS[2], EDGE_VECTORS[3]])
def test_faces_near_equals_numpy(using: str, probe: np.ndarray, stored: list[np.ndarray]) -> None:
    _reset(using)
    ids = _faces(using, stored)
    found = dict(matching.faces_near(probe, threshold=100.0, using=using))
    assert sorted(found) == sorted(ids)
    for face_id, vec in zip(ids, stored, strict=True):
        assert found[face_id] == pytest.approx(reference_distance(probe, vec), abs=TOLERANCE)


@pytest.mark.parametrize("using", DATABASES)
@property_settings
@given(reference=vector, stored=st.lists(vector, min_size=1, max_size=4))
def test_references_near_faces_equals_numpy(
    using: str, reference: np.ndarray, stored: list[np.ndarray]
) -> None:
    _reset(using)
    ids = _faces(using, stored)
    ref = _reference(using, reference, limit=100.0)
    hits = matching.references_near_faces(_as_stored(using, ids), using=using)
    assert [(hit.face_id, hit.reference_id) for hit in hits] == [(face_id, ref.pk) for face_id in ids]
    for hit, vec in zip(hits, stored, strict=True):
        assert hit.distance == pytest.approx(reference_distance(reference, vec), abs=TOLERANCE)


@pytest.mark.parametrize("using", DATABASES)
@property_settings
@given(probe=vector, stored=st.lists(vector, min_size=1, max_size=4), threshold=st.floats(0.0, 3.0))
def test_the_threshold_cuts_where_numpy_says(
    using: str, probe: np.ndarray, stored: list[np.ndarray], threshold: float
) -> None:
    distances = [reference_distance(probe, vec) for vec in stored]
    assume(all(abs(d - threshold) > TOLERANCE for d in distances))  # no ties within rounding
    _reset(using)
    ids = _faces(using, stored)
    found = {face_id for face_id, _ in matching.faces_near(probe, threshold=threshold, using=using)}
    assert found == {face_id for face_id, d in zip(ids, distances, strict=True) if d <= threshold}


def _captured_sql(using: str, call: Callable[[], Any]) -> list[tuple[str, int]]:
    """The SQL templates (before parameters) a call executes, with their parameter counts."""
    seen: list[tuple[str, int]] = []

    def wrapper(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    with connections[using].execute_wrapper(wrapper):
        call()
    return seen


@pytest.mark.parametrize("using", DATABASES)
@property_settings
@given(
    probe=vector,
    threshold=st.floats(0.0, 10.0),
    ids=st.lists(st.integers(1, 2**62), min_size=1, max_size=3, unique=True),
)
def test_no_input_changes_the_sql_text(
    using: str, probe: np.ndarray, threshold: float, ids: list[int]
) -> None:
    baseline = _captured_sql(using, lambda: matching.faces_near(_constant(0.0), threshold=0.5, using=using))
    assert (
        _captured_sql(using, lambda: matching.faces_near(probe, threshold=threshold, using=using)) == baseline
    )
    ((template, count),) = baseline
    # The 128 values twice in SELECT and WHERE, the projection's once, the two limits.
    assert count == 4 * ENCODING_SIZE + PROJECTION_SIZE + 2 and template.count("%s") == count
    restricted = _captured_sql(
        using, lambda: matching.faces_near(probe, threshold=threshold, using=using, face_ids=ids)
    )
    ((sql, count),) = restricted
    assert count == 4 * ENCODING_SIZE + PROJECTION_SIZE + len(ids) + 2 and sql.count("%s") == count
    assert sql == template.replace("WHERE ", "WHERE f.id IN (" + ", ".join(["%s"] * len(ids)) + ") AND ")
    for text in (repr(float(threshold)), *(str(i) for i in ids if i > 128)):
        assert text not in template


@pytest.mark.parametrize("using", DATABASES)
@property_settings
@given(stored=st.lists(vector, min_size=1, max_size=3), threshold=st.floats(0.0, 10.0))
def test_no_stored_face_changes_the_reference_sql_text(
    using: str, stored: list[np.ndarray], threshold: float
) -> None:
    """The new faces' values are bound too: the text depends only on how many faces."""
    _reset(using)
    faces = _as_stored(using, _faces(using, stored))
    baseline_faces = _as_stored(using, _faces(using, [_constant(0.0)] * len(stored)))
    near = _captured_sql(using, lambda: matching.references_near_faces(faces, widen=threshold, using=using))
    baseline = _captured_sql(
        using, lambda: matching.references_near_faces(baseline_faces, widen=1.0, using=using)
    )
    ((template, count),) = near
    assert [sql for sql, _ in near] == [sql for sql, _ in baseline]
    # Per face: its id, the 128 values twice (one distance), the projection once,
    # widen² and the offset in the projected bound, widen² in the exact one.
    assert count == len(stored) * (2 * ENCODING_SIZE + PROJECTION_SIZE + 4) and template.count("%s") == count
    for text in (repr(float(threshold)), *(repr(float(v)) for vec in stored for v in vec if abs(v) > 1e-3)):
        assert text not in template


HOSTILE_VALUES = st.one_of(
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(float("-inf")),
    st.text(max_size=20).filter(lambda s: not _is_number(s)),
    st.just("0); DROP TABLE faces_faceencoding; --"),
)


def _is_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


@settings(max_examples=60, deadline=None, derandomize=True)
@given(values=st.lists(st.one_of(element, HOSTILE_VALUES), min_size=0, max_size=130))
def test_a_vector_that_is_not_128_finite_numbers_never_reaches_the_database(values: list[Any]) -> None:
    finite = len(values) == ENCODING_SIZE and all(isinstance(v, float) and np.isfinite(v) for v in values)
    assume(not finite)
    with pytest.raises(ValueError):
        matching.vector_params(values)
    with pytest.raises(ValueError):
        matching.faces_near(values, threshold=0.5)
    assert FaceEncoding.objects.exists() is False  # the table is still there to ask


@pytest.mark.parametrize("using", DATABASES)
def test_tiny_differences_between_stored_faces_and_references_do_not_underflow(using: str) -> None:
    """Regression: on PostgreSQL, real × real of a 1e-30 difference underflowed and raised."""
    _reset(using)
    (face_id,) = _faces(using, [_constant(1e-30)])
    reference = _reference(using, _constant(0.0))
    hits = matching.references_near_faces(_as_stored(using, [face_id]), using=using)
    assert [(hit.face_id, hit.reference_id) for hit in hits] == [(face_id, reference.pk)]
    assert hits[0].distance == pytest.approx(np.sqrt(128) * 1e-30, rel=1e-6)
