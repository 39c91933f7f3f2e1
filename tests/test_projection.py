"""The projected pre-filter (faces/projection.py) and the index's reach rule, on real encodings.

The projection is an exact pre-filter: a face within a limit always passes
it, so the product's queries return exactly what the 128-term sum alone
returns. The reach rule probes every cluster whose centroid is within the
limit + THROWBACK_FACE_INDEX_REACH; with a reach at least as large as every
cluster's radius no match can be missed. Per-reference limits are compared
with NumPy on the stored values. The encodings are real: faces of
../shared/faces/lfw_dev encoded by the product's engine once per module.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faces import checks, engine, index, matching, projection
from faces.fields import ENCODING_FIELDS, PROJECTION_FIELDS, PROJECTION_NORM_FIELD
from faces.models import FaceCluster, FaceEncoding
from members.models import ReferenceFace
from tests.factories import AlbumFactory, MemberFactory, PhotoFactory, face_with

DATABASES = ["default", "sqlite"]
pytestmark = pytest.mark.django_db(databases=DATABASES)
# Every third single-person photo of lfw_dev: about 65 faces of 20 people and distractors.
EVERY = 3
property_settings = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@pytest.fixture(scope="module")
def real(faces_dir: Path) -> tuple[np.ndarray, list[str]]:
    """(encodings n × 128 float32, identity of each) of real single-face photos."""
    folder = faces_dir / "lfw_dev"
    with (folder / "labels.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["kind"] == "single"][::EVERY]
    encodings, identities = [], []
    for row in rows:
        faces = engine.analyse((folder / row["file"]).read_bytes()).faces
        if len(faces) == 1:
            encodings.append(faces[0].encoding)
            identities.append(row["identities"])
    return np.asarray(encodings, dtype=np.float32), identities


def _store(vectors: np.ndarray, using: str) -> list[int]:
    photo = PhotoFactory.build(album=AlbumFactory.build())
    photo.album.save(using=using)
    photo.album_id = photo.album.pk
    photo.save(using=using)
    return [face_with(photo, vector, using=using).pk for vector in vectors]


def _ids(rows: list[tuple[int, float]]) -> list[int]:
    return [face_id for face_id, _ in rows]


def _without_prefilter(vector: np.ndarray, threshold: float, using: str) -> list[tuple[int, float]]:
    sql, params = matching.faces_near_query(vector, threshold=threshold, prefilter=False)
    with connections[using].cursor() as cursor:
        matching.execute(cursor, sql, params)
        return [(face_id, float(np.sqrt(max(d, 0.0)))) for face_id, d in cursor.fetchall()]


def test_shipped_axes_are_orthonormal_and_carry_most_of_the_real_differences(
    real: tuple[np.ndarray, list[str]],
) -> None:
    axes = projection.load()
    assert axes.shape == (projection.PROJECTION_SIZE, 128)
    assert np.abs(axes @ axes.T - np.eye(projection.PROJECTION_SIZE)).max() < 1e-6
    encodings = real[0].astype(np.float64)
    differences = encodings[:, None, :] - encodings[None, :, :]
    full = (differences**2).sum(-1)
    projected = ((differences @ axes.T) ** 2).sum(-1)
    # Fitted on other photos, the axes still hold over half of these faces' squared distances.
    assert projected.sum() / full.sum() > 0.5
    assert checks.check_projection_file() == []


@property_settings
@given(
    first=st.integers(0, 10_000),
    second=st.integers(0, 10_000),
    mix=st.floats(0.0, 1.0),
    noise=st.floats(0.0, 0.2),
    seed=st.integers(0, 2**32 - 1),
)
def test_projected_distance_never_exceeds_the_distance(
    real: tuple[np.ndarray, list[str]], first: int, second: int, mix: float, noise: float, seed: int
) -> None:
    """With the columns' float32 rounding and the slack, for pairs near real faces."""
    encodings = real[0]
    rng = np.random.default_rng(seed)
    a = encodings[first % len(encodings)]
    b = (1 - mix) * a + mix * encodings[second % len(encodings)] + rng.normal(scale=noise, size=128)
    b = b.astype(np.float32)
    # What the SQL computes from the stored (float32) columns of a and the parameters of b.
    coordinates, square = projection.stored(a)
    row_part = square + float(np.dot(coordinates, matching.projected_params(b)))
    distance = float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))
    assert row_part <= matching.projected_bound(b, distance)


@pytest.mark.parametrize("using", DATABASES)
@property_settings
@given(query=st.integers(0, 10_000), limit=st.floats(0.0, 1.0), noise=st.floats(0.0, 0.1))
def test_the_prefilter_never_drops_a_match(
    real: tuple[np.ndarray, list[str]], using: str, query: int, limit: float, noise: float
) -> None:
    encodings = real[0]
    FaceEncoding.objects.using(using).all().delete()
    _store(encodings, using)
    vector = encodings[query % len(encodings)] + np.random.default_rng(query).normal(scale=noise, size=128)
    assert matching.faces_near(vector, threshold=limit, using=using) == _without_prefilter(
        vector, limit, using
    )


@pytest.mark.parametrize("using", DATABASES)
def test_a_face_exactly_at_the_limit_along_the_axes_is_found(
    real: tuple[np.ndarray, list[str]], using: str
) -> None:
    """Along a principal axis the projected distance equals the distance: the tightest case."""
    face = real[0][0]
    (face_id,) = _store(face[None, :], using)
    axis = projection.axes()[0]
    for limit in (0.3, 0.49, 0.6):
        query = (face.astype(np.float64) + limit * axis).astype(np.float32)
        exact = _without_prefilter(query, limit, using)
        assert matching.faces_near(query, threshold=limit, using=using) == exact
        farther = (face.astype(np.float64) + (limit + 0.01) * axis).astype(np.float32)
        assert matching.faces_near(farther, threshold=limit, using=using) == []
    assert _ids(matching.faces_near(face, threshold=0.0, using=using)) == [face_id]


@pytest.mark.parametrize("using", DATABASES)
def test_stored_faces_references_and_centroids_carry_their_projection_and_its_square(
    real: tuple[np.ndarray, list[str]], using: str
) -> None:
    encodings = real[0][:4]
    _store(encodings, using)
    reference = ReferenceFace(member=MemberFactory.build(), image="references/x.jpg")
    reference.member.save(using=using)
    reference.member_id = reference.member.pk
    reference.set_encoding(encodings[0])
    reference.save(using=using)
    index.face_index_build(clusters=2, using=using)
    for model in (FaceEncoding, ReferenceFace, FaceCluster):
        rows = np.asarray(
            model.objects.using(using).values_list(
                *ENCODING_FIELDS, *PROJECTION_FIELDS, PROJECTION_NORM_FIELD
            ),
            dtype=np.float64,
        )
        assert len(rows)
        expected = projection.project(rows[:, :128])
        np.testing.assert_allclose(rows[:, 128:-1], expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(rows[:, -1], (expected**2).sum(axis=1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("using", DATABASES)
def test_reprojecting_recomputes_columns_the_check_found_wrong(
    real: tuple[np.ndarray, list[str]], using: str
) -> None:
    ids = _store(real[0][:5], using)
    fields = (*PROJECTION_FIELDS, PROJECTION_NORM_FIELD)
    before = list(FaceEncoding.objects.using(using).order_by("id").values_list(*fields))
    FaceEncoding.objects.using(using).update(**dict.fromkeys(fields, 0.0))
    if using == "default":
        (problem,) = checks.check_projection_columns(databases=["default"])
        assert problem.id == "faces.E011"
    if using == "default":
        stdout = io.StringIO()
        call_command("build_face_index", "--reproject", stdout=stdout)
        assert (
            stdout.getvalue() == f"Projection recomputed for {len(ids):,} faces, centroids and references.\n"
        )
    else:
        assert index.projection_refresh(using=using) == len(ids)
    after = list(FaceEncoding.objects.using(using).order_by("id").values_list(*fields))
    np.testing.assert_allclose(np.asarray(after), np.asarray(before), rtol=0, atol=1e-6)
    if using == "default":
        assert checks.check_projection_columns(databases=["default"]) == []


def test_a_broken_projection_file_is_a_system_check_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "projection.json"
    bad.write_text(json.dumps({"axes": (2 * projection.load()).tolist()}))
    monkeypatch.setattr(projection, "PROJECTION_FILE", bad)
    (problem,) = checks.check_projection_file()
    assert problem.id == "faces.E010" and "not orthonormal" in problem.msg
    bad.write_text("{}")
    (problem,) = checks.check_projection_file()
    assert problem.id == "faces.E010"


# --- the index's reach rule --------------------------------------------------------
CLUSTERS = 12


@pytest.mark.parametrize("using", DATABASES)
def test_a_reach_beyond_every_cluster_radius_finds_every_match(
    real: tuple[np.ndarray, list[str]], using: str
) -> None:
    encodings = real[0]
    ids = _store(encodings, using)
    index.face_index_build(clusters=CLUSTERS, using=using)
    centroids = {c.pk: c.encoding.astype(np.float64) for c in FaceCluster.objects.using(using)}
    faces = dict(FaceEncoding.objects.using(using).values_list("id", "cluster_id"))
    radius = max(
        float(np.linalg.norm(encodings[n].astype(np.float64) - centroids[faces[face_id]]))
        for n, face_id in enumerate(ids)
    )
    missed_with_less = 0
    for threshold in (0.45, 0.55):
        for vector in encodings:
            exact = matching.faces_near(vector, threshold=threshold, using=using)
            with override_settings(THROWBACK_FACE_INDEX_REACH=radius + 1e-4, THROWBACK_FACE_INDEX_PROBE=1000):
                assert index.faces_near(vector, threshold=threshold, using=using) == exact
            with override_settings(THROWBACK_FACE_INDEX_REACH=0.0, THROWBACK_FACE_INDEX_PROBE=1):
                found = index.faces_near(vector, threshold=threshold, using=using)
            assert set(_ids(found)) <= set(_ids(exact))
            missed_with_less += len(exact) - len(found)
    # The rule matters: one cluster at no reach misses matches the wide reach found.
    assert missed_with_less > 0


@pytest.mark.parametrize("using", DATABASES)
def test_the_reach_rule_probes_the_centroids_within_reach_nearest_first_up_to_the_cap(
    real: tuple[np.ndarray, list[str]], using: str
) -> None:
    encodings = real[0]
    _store(encodings, using)
    index.face_index_build(clusters=CLUSTERS, using=using)
    centroids = list(FaceCluster.objects.using(using))
    for vector, reach, cap in ((encodings[0], 0.15, 1000), (encodings[1], 0.6, 1000), (encodings[2], 0.6, 2)):
        distances = sorted(
            (float(np.linalg.norm(c.encoding.astype(np.float64) - vector.astype(np.float64))), c.pk)
            for c in centroids
        )
        within = [pk for d, pk in distances if d <= 0.49 + reach][:cap]
        with override_settings(THROWBACK_FACE_INDEX_REACH=reach, THROWBACK_FACE_INDEX_PROBE=cap):
            probed = index.probe_clusters(vector, threshold=0.49, using=using)
        # Fewer than PROBE_LEAST within reach are topped up with the nearest by projection.
        least = min(index.PROBE_LEAST, cap)
        axes = projection.axes()
        by_projection = [
            c.pk
            for c in sorted(
                centroids,
                key=lambda c: float(np.linalg.norm(axes @ (c.encoding.astype(np.float64) - vector))),
            )
        ]
        expected = within + [pk for pk in by_projection if pk not in within][: max(least - len(within), 0)]
        assert within and probed == expected


@pytest.mark.parametrize("using", DATABASES)
def test_far_from_every_centroid_the_nearest_clusters_are_still_probed(
    real: tuple[np.ndarray, list[str]], using: str
) -> None:
    _store(real[0], using)
    index.face_index_build(clusters=CLUSTERS, using=using)
    far = np.full(128, 0.9, dtype=np.float32)
    with override_settings(THROWBACK_FACE_INDEX_REACH=0.0):
        probed = index.probe_clusters(far, threshold=0.1, using=using)
    axes = projection.axes()
    by_projection = sorted(
        FaceCluster.objects.using(using),
        key=lambda c: float(np.linalg.norm(axes @ (c.encoding.astype(np.float64) - far))),
    )
    assert probed == [c.pk for c in by_projection][: index.PROBE_LEAST]


# --- per-reference limits ------------------------------------------------------------
@pytest.mark.parametrize("using", DATABASES)
@property_settings
@given(seed=st.integers(0, 2**32 - 1), widen=st.sampled_from([1.0, 1.1]))
def test_each_reference_matches_within_its_own_limit(
    real: tuple[np.ndarray, list[str]], using: str, seed: int, widen: float
) -> None:
    encodings = real[0]
    rng = np.random.default_rng(seed)
    ReferenceFace.objects.using(using).all().delete()
    FaceEncoding.objects.using(using).all().delete()
    chosen = rng.permutation(len(encodings))
    member = MemberFactory.build()
    member.save(using=using)
    references = []
    for n in chosen[:20]:
        reference = ReferenceFace(member=member, image="references/x.jpg", match_limit=rng.uniform(0.3, 0.65))
        reference.set_encoding(encodings[n])
        reference.save(using=using)
        references.append(reference)
    face_ids = _store(encodings[chosen[20:30]], using)
    faces = [(face_id, encodings[n]) for face_id, n in zip(face_ids, chosen[20:30], strict=True)]
    hits = matching.references_near_faces(faces, widen=widen, using=using)
    expected, borderline = set(), set()
    for face_id, vector in faces:
        for reference in references:
            distance = float(
                np.linalg.norm(vector.astype(np.float64) - reference.encoding.astype(np.float64))
            )
            limit = reference.match_limit * widen
            pair = (face_id, reference.pk)
            if abs(distance - limit) < 1e-6:
                borderline.add(pair)
            elif distance <= limit:
                expected.add(pair)
    found = {(hit.face_id, hit.reference_id) for hit in hits}
    assert found - borderline == expected
    for hit in hits:
        assert hit.limit == next(r.match_limit for r in references if r.pk == hit.reference_id)


# --- the migration ----------------------------------------------------------------------
BEFORE = [("faces", "0009_importrun_owner_heartbeat_resumed"), ("members", "0004_reference_kinds_and_limits")]


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_projection_of_existing_faces_and_references(
    real: tuple[np.ndarray, list[str]],
) -> None:
    encodings = real[0][:3]
    executor = _migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        album = old.get_model("faces", "Album").objects.create(source="folder", source_id="a", title="a")
        photo = old.get_model("faces", "Photo").objects.create(album=album, source_id="p.jpg", file="p.jpg")
        member = old.get_model("members", "Member").objects.create(username="m")
        for vector in encodings:
            values = dict(zip(ENCODING_FIELDS, vector.tolist(), strict=True))
            old.get_model("faces", "FaceEncoding").objects.create(
                photo=photo, top=0, right=1, bottom=1, left=0, **values
            )
            old.get_model("members", "ReferenceFace").objects.create(member=member, image="r.jpg", **values)
    finally:
        _migrate(executor.loader.graph.leaf_nodes())
    expected = projection.project(encodings.astype(np.float64))
    for model in (FaceEncoding, ReferenceFace):
        rows = np.asarray(
            model.objects.order_by("id").values_list(*PROJECTION_FIELDS, PROJECTION_NORM_FIELD),
            dtype=np.float64,
        )
        np.testing.assert_allclose(rows[:, :-1], expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(rows[:, -1], (expected**2).sum(axis=1), rtol=0, atol=1e-6)
    assert checks.check_projection_columns(databases=["default"]) == []


@pytest.fixture(autouse=True)
def _fresh_axes() -> Iterator[None]:
    """Tests that swap the projection file must not leave its axes cached."""
    projection.axes.cache_clear()
    yield
    projection.axes.cache_clear()
