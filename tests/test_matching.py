"""The generated distance SQL, on PostgreSQL and on SQLite."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connections

from faces import matching
from faces.fields import ENCODING_SIZE
from faces.models import FaceEncoding
from members.models import ReferenceFace
from tests.factories import AlbumFactory, MemberFactory, PhotoFactory, face_with

DATABASES = ["default", "sqlite"]
pytestmark = pytest.mark.django_db(databases=DATABASES)


def unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=ENCODING_SIZE)
    return (vector / np.linalg.norm(vector) * 0.5).astype(np.float32)


def stored_faces(using: str, vectors: list[np.ndarray]) -> list[int]:
    photo = PhotoFactory.build(album=AlbumFactory.build())
    photo.album.save(using=using)
    photo.album_id = photo.album.pk
    photo.save(using=using)
    return [face_with(photo, vector, using=using).pk for vector in vectors]


def reference_for(using: str, vector: np.ndarray, username: str, limit: float = 0.49) -> ReferenceFace:
    member = MemberFactory.build(username=username)
    member.save(using=using)
    reference = ReferenceFace(
        member=member, image="references/x.jpg", top=0, right=1, bottom=1, left=0, match_limit=limit
    )
    reference.set_encoding(vector)
    reference.save(using=using)
    return reference


def test_sql_text_depends_only_on_columns() -> None:
    sql = matching.squared_distance_sql(matching.columns("f"), matching.PLACEHOLDERS)
    assert sql.count("%s") == 2 * ENCODING_SIZE
    assert '(f."field0" - %s) * (f."field0" - %s)' in sql
    assert '(f."field127" - %s) * (f."field127" - %s)' in sql


def test_vector_params_refuses_wrong_shapes_and_non_finite_values() -> None:
    with pytest.raises(ValueError, match="128 finite numbers"):
        matching.vector_params([0.0] * 127)
    with pytest.raises(ValueError, match="128 finite numbers"):
        matching.vector_params([float("nan")] * 128)


@pytest.mark.parametrize("using", DATABASES)
def test_faces_near_returns_exactly_the_faces_within_threshold(using: str) -> None:
    rng = np.random.default_rng(7)
    probe = unit(rng)
    vectors = [
        probe + rng.normal(scale=s, size=ENCODING_SIZE).astype(np.float32) for s in np.linspace(0, 0.08, 40)
    ]
    ids = stored_faces(using, vectors)
    distances = {
        i: float(np.linalg.norm(v.astype(np.float64) - probe)) for i, v in zip(ids, vectors, strict=True)
    }
    threshold = float(np.median(list(distances.values())))

    hits = matching.faces_near(probe, threshold=threshold, using=using)

    expected = sorted((d, i) for i, d in distances.items() if d <= threshold)
    assert [face_id for face_id, _ in hits] == [i for _, i in expected]
    for (_, got), (want, _) in zip(hits, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("using", DATABASES)
def test_faces_near_can_be_restricted_to_some_faces(using: str) -> None:
    rng = np.random.default_rng(3)
    probe = unit(rng)
    ids = stored_faces(using, [probe, probe, probe])
    hits = matching.faces_near(probe, threshold=0.1, using=using, face_ids=ids[1:])
    assert [face_id for face_id, _ in hits] == ids[1:]
    assert matching.faces_near(probe, threshold=0.1, using=using, face_ids=[]) == []


@pytest.mark.parametrize("using", DATABASES)
def test_both_directions_find_the_same_pairs(using: str) -> None:
    rng = np.random.default_rng(11)
    people = [unit(rng) for _ in range(4)]
    face_vectors = [
        p + rng.normal(scale=0.03, size=ENCODING_SIZE).astype(np.float32) for p in people for _ in range(3)
    ]
    face_ids = stored_faces(using, face_vectors)
    references = [reference_for(using, p, f"person{i}") for i, p in enumerate(people)]

    stored = [(pk, FaceEncoding.objects.using(using).get(pk=pk).encoding) for pk in face_ids]
    batch = matching.references_near_faces(stored, using=using)  # every limit is the default 0.49
    per_reference = {
        (face_id, reference.pk)
        for reference in references
        for face_id, _ in matching.faces_near(reference.encoding, threshold=0.49, using=using)
    }

    assert {(hit.face_id, hit.reference_id) for hit in batch} == per_reference
    # each person's three faces match their own reference and nobody else's
    assert len(per_reference) == 12
    for hit in batch:
        owner = face_ids.index(hit.face_id) // 3
        assert hit.reference_id == references[owner].pk
        assert hit.member_id == references[owner].member_id


@pytest.mark.parametrize("using", DATABASES)
def test_each_reference_is_compared_with_its_own_limit(using: str) -> None:
    # Faces at distance 0.25, 0.375 and 0.5 (exact in float32) from the origin.
    vectors = []
    for distance in (0.25, 0.375, 0.5):
        vector = np.zeros(ENCODING_SIZE, dtype=np.float32)
        vector[0] = distance
        vectors.append(vector)
    near, middle, far = stored_faces(using, vectors)
    origin = np.zeros(ENCODING_SIZE, dtype=np.float32)
    strict = reference_for(using, origin, "strict", limit=0.3)
    loose = reference_for(using, origin, "loose", limit=0.45)
    faces = [(pk, FaceEncoding.objects.using(using).get(pk=pk).encoding) for pk in (near, middle, far)]

    hits = matching.references_near_faces(faces, using=using)
    assert {(h.face_id, h.reference_id) for h in hits} == {
        (near, strict.pk),
        (near, loose.pk),
        (middle, loose.pk),
    }
    assert all(h.within for h in hits)

    # Widened by 1.2: the strict limit reaches 0.36 (not 0.375), the loose one 0.54.
    widened = matching.references_near_faces(faces, widen=1.2, using=using)
    assert {(h.face_id, h.reference_id, h.within) for h in widened} == {
        (near, strict.pk, True),
        (near, loose.pk, True),
        (middle, loose.pk, True),
        (far, loose.pk, False),
    }
    assert [h.limit for h in widened if h.reference_id == strict.pk] == [0.3]


@pytest.mark.parametrize("using", DATABASES)
def test_threshold_is_inclusive_at_the_boundary_and_exclusive_beyond(using: str) -> None:
    probe = np.zeros(ENCODING_SIZE, dtype=np.float32)
    other = np.zeros(ENCODING_SIZE, dtype=np.float32)
    other[0] = 0.5  # distance exactly 0.5, representable in float32
    (face_id,) = stored_faces(using, [other])
    assert [f for f, _ in matching.faces_near(probe, threshold=0.5, using=using)] == [face_id]
    assert matching.faces_near(probe, threshold=0.49, using=using) == []


def test_encoding_columns_are_single_precision_on_postgresql() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT data_type, count(*) FROM information_schema.columns "
            "WHERE table_name = 'faces_faceencoding' AND column_name LIKE 'field%%' GROUP BY data_type"
        )
        assert cursor.fetchall() == [("real", 128)]
