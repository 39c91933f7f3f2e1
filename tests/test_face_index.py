"""The face index: clusters, assignment, and queries equal to the exact one where they look."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from faces import index, matching, services
from faces.engine import Analysis, DetectedFace
from faces.fields import ENCODING_SIZE
from faces.models import FaceCluster, FaceEncoding
from tests.factories import AlbumFactory, PhotoFactory, face_with

DATABASES = ["default", "sqlite"]
pytestmark = pytest.mark.django_db(databases=DATABASES)
THRESHOLD = 0.49
GROUPS = 3
PER_GROUP = 6


def centre(group: int) -> np.ndarray:
    """Well-separated group centres: 0.6 along axis 10·group (0.85 apart)."""
    vector = np.zeros(ENCODING_SIZE, dtype=np.float32)
    vector[10 * group] = 0.6
    return vector


def grouped_faces(using: str = "default") -> dict[int, list[int]]:
    """PER_GROUP stored faces around each of GROUPS centres; face ids by group."""
    rng = np.random.default_rng(3)
    photo = PhotoFactory.build(album=AlbumFactory.build())
    photo.album.save(using=using)
    photo.album_id = photo.album.pk
    photo.save(using=using)
    return {
        group: [
            face_with(photo, centre(group) + rng.normal(scale=0.01, size=ENCODING_SIZE), using=using).pk
            for _ in range(PER_GROUP)
        ]
        for group in range(GROUPS)
    }


def partition(using: str = "default") -> set[frozenset[int]]:
    by_cluster: dict[int | None, set[int]] = {}
    for face_id, cluster_id in FaceEncoding.objects.using(using).values_list("id", "cluster_id"):
        by_cluster.setdefault(cluster_id, set()).add(face_id)
    return {frozenset(ids) for ids in by_cluster.values()}


@pytest.mark.parametrize("using", DATABASES)
def test_build_puts_each_group_in_its_own_cluster(using: str) -> None:
    groups = grouped_faces(using)
    build = index.face_index_build(clusters=GROUPS, using=using)
    assert (build.clusters, build.faces, build.unassigned_after) == (GROUPS, GROUPS * PER_GROUP, 0)
    assert partition(using) == {frozenset(ids) for ids in groups.values()}
    clusters = list(FaceCluster.objects.using(using).all())
    assert sorted(cluster.size for cluster in clusters) == [PER_GROUP] * GROUPS
    # Each centroid is its group's mean.
    for cluster in clusters:
        members = FaceEncoding.objects.using(using).filter(cluster=cluster)
        mean = np.mean([face.encoding for face in members], axis=0)
        np.testing.assert_allclose(cluster.encoding, mean, atol=1e-6)


@pytest.mark.parametrize("using", DATABASES)
def test_probing_every_cluster_equals_the_exact_query(using: str) -> None:
    grouped_faces(using)
    index.face_index_build(clusters=GROUPS, using=using)
    rng = np.random.default_rng(11)
    for group in range(GROUPS):
        probe = centre(group) + rng.normal(scale=0.02, size=ENCODING_SIZE).astype(np.float32)
        exact = matching.faces_near(probe, threshold=THRESHOLD, using=using)
        assert len(exact) == PER_GROUP
        with override_settings(THROWBACK_FACE_INDEX_PROBE=GROUPS):
            assert index.faces_near(probe, threshold=THRESHOLD, using=using) == exact
        with override_settings(THROWBACK_FACE_INDEX_PROBE=1):
            assert index.faces_near(probe, threshold=THRESHOLD, using=using) == exact


def test_only_probed_clusters_and_unassigned_faces_are_compared() -> None:
    groups = grouped_faces()
    index.face_index_build(clusters=GROUPS)
    cluster_of = dict(FaceEncoding.objects.values_list("id", "cluster_id"))
    other_cluster = cluster_of[groups[1][0]]
    # A face near group 0 filed (by hand) under group 1's cluster, and one not yet assigned.
    photo = FaceEncoding.objects.get(pk=groups[0][0]).photo
    misfiled = face_with(photo, centre(0))
    FaceEncoding.objects.filter(pk=misfiled.pk).update(cluster_id=other_cluster)
    unassigned = face_with(photo, centre(0) * 1.01)
    assert FaceEncoding.objects.get(pk=unassigned.pk).cluster_id is None

    exact_ids = [face_id for face_id, _ in matching.faces_near(centre(0), threshold=THRESHOLD)]
    assert set(exact_ids) == {*groups[0], misfiled.pk, unassigned.pk}
    with override_settings(THROWBACK_FACE_INDEX_PROBE=1):
        indexed = index.faces_near(centre(0), threshold=THRESHOLD)
    assert {face_id for face_id, _ in indexed} == {*groups[0], unassigned.pk}
    # Same distances and order as the exact query for the faces it compares.
    exact = dict(matching.faces_near(centre(0), threshold=THRESHOLD))
    assert indexed == [(face_id, exact[face_id]) for face_id in exact_ids if face_id != misfiled.pk]
    with override_settings(THROWBACK_FACE_INDEX=False, THROWBACK_FACE_INDEX_PROBE=1):
        assert index.faces_near(centre(0), threshold=THRESHOLD) == matching.faces_near(
            centre(0), threshold=THRESHOLD
        )


def test_a_stored_photo_s_faces_join_their_nearest_cluster_and_are_found_before_a_rebuild() -> None:
    groups = grouped_faces()
    index.face_index_build(clusters=GROUPS)
    cluster_of = dict(FaceEncoding.objects.values_list("id", "cluster_id"))
    photo = PhotoFactory(status="pending")
    analysis = Analysis(
        sha256="0" * 64,
        width=100,
        height=100,
        faces=[
            DetectedFace(top=0, right=10, bottom=10, left=0, encoding=centre(2) * 0.98),
            DetectedFace(top=0, right=30, bottom=10, left=20, encoding=centre(1) * 1.02),
        ],
    )
    services.photo_store(photo_id=photo.pk, analysis=analysis)
    new = list(FaceEncoding.objects.filter(photo=photo).order_by("left"))
    assert [face.cluster_id for face in new] == [cluster_of[groups[2][0]], cluster_of[groups[1][0]]]
    with override_settings(THROWBACK_FACE_INDEX_PROBE=1):
        found = {face_id for face_id, _ in index.faces_near(centre(2), threshold=THRESHOLD)}
    assert found == {*groups[2], new[0].pk}


@pytest.mark.parametrize("using", DATABASES)
def test_faces_stored_before_any_build_stay_unassigned(using: str) -> None:
    groups = grouped_faces(using)
    matching.clusters_assign(groups[0], using=using)
    assert set(FaceEncoding.objects.using(using).values_list("cluster_id", flat=True)) == {None}
    # Without centroids the index answers exactly.
    assert index.faces_near(centre(1), threshold=THRESHOLD, using=using) == matching.faces_near(
        centre(1), threshold=THRESHOLD, using=using
    )


def test_rebuilding_gives_the_same_partition_and_replaces_the_centroids() -> None:
    grouped_faces()
    index.face_index_build(clusters=GROUPS, seed=5)
    first_ids = set(FaceCluster.objects.values_list("id", flat=True))
    first = partition()
    first_centroids = sorted(tuple(c.encoding.tolist()) for c in FaceCluster.objects.all())
    index.face_index_build(clusters=GROUPS, seed=5)
    assert partition() == first
    assert sorted(tuple(c.encoding.tolist()) for c in FaceCluster.objects.all()) == first_centroids
    assert FaceCluster.objects.count() == GROUPS
    assert first_ids.isdisjoint(FaceCluster.objects.values_list("id", flat=True))


def test_read_encodings_returns_every_face_exactly() -> None:
    groups = grouped_faces()
    ids, vectors = index.read_encodings()
    assert ids.tolist() == sorted(face_id for members in groups.values() for face_id in members)
    for face_id, vector in zip(ids.tolist(), vectors, strict=True):
        np.testing.assert_array_equal(vector, FaceEncoding.objects.get(pk=face_id).encoding)


def test_more_clusters_than_faces_are_capped_and_an_empty_table_builds_nothing() -> None:
    assert index.face_index_build().clusters == 0
    assert FaceCluster.objects.count() == 0
    grouped_faces()
    assert index.face_index_build(clusters=100).clusters == GROUPS * PER_GROUP
    with pytest.raises(ValueError, match="at least one cluster"):
        index.face_index_build(clusters=0)


def test_build_face_index_command_refuses_fewer_than_one_cluster_and_builds_nothing() -> None:
    grouped_faces()
    with pytest.raises(CommandError, match=r"^--clusters must be at least 1$"):
        call_command("build_face_index", "--clusters", "0", stdout=io.StringIO())
    assert FaceCluster.objects.count() == 0
    assert not FaceEncoding.objects.filter(cluster__isnull=False).exists()


def test_clustering_the_table_orders_it_by_cluster_and_changes_no_answer() -> None:
    from django.db import connection

    groups = grouped_faces()
    index.face_index_build(clusters=GROUPS)
    with override_settings(THROWBACK_FACE_INDEX_PROBE=1):
        before = [index.faces_near(centre(group), threshold=THRESHOLD) for group in groups]
    # Interleave the groups on disk, then let the build's --cluster put them back in order.
    FaceEncoding.objects.filter(pk__in=groups[0]).update(top=1)
    index.face_index_build(clusters=GROUPS, cluster_table=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT cluster_id FROM faces_faceencoding ORDER BY ctid")
        on_disk = [cluster_id for (cluster_id,) in cursor.fetchall()]
    assert on_disk == sorted(on_disk)
    with override_settings(THROWBACK_FACE_INDEX_PROBE=1):
        assert [index.faces_near(centre(group), threshold=THRESHOLD) for group in groups] == before
    assert index.table_cluster(using="sqlite") is False


def test_build_face_index_command_clusters_the_table_on_request() -> None:
    from django.db import connection

    grouped_faces()
    call_command("build_face_index", "--clusters", "3", "--cluster", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE c.relname = 'faces_faceencoding' AND i.indisclustered"
        )
        assert cursor.fetchone()[0] == 1


def test_build_face_index_command_reports_and_drops() -> None:
    grouped_faces()
    stdout = io.StringIO()
    with override_settings(THROWBACK_FACE_INDEX_PROBE=2, THROWBACK_FACE_INDEX_REACH=0.15):
        call_command("build_face_index", "--clusters", "3", stdout=stdout)
    assert stdout.getvalue().startswith("Face index built: 18 faces in 3 clusters in ")
    assert stdout.getvalue().endswith(
        " s; a selfie probes the clusters within its limit + 0.15 (at most 2); index on.\n"
    )
    stdout = io.StringIO()
    call_command("build_face_index", "--drop", stdout=stdout)
    assert stdout.getvalue() == "Face index removed (3 clusters); every face is compared again.\n"
    assert set(FaceEncoding.objects.values_list("cluster_id", flat=True)) == {None}


@pytest.mark.django_db(transaction=True)
def test_distance_queries_run_without_jit_and_leave_the_session_setting_alone() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit')")
        before = cursor.fetchone()[0]
        matching.execute(cursor, "SELECT current_setting('jit'), %s", [1])
        assert cursor.fetchall() == [("off", 1)]
        cursor.execute("SELECT current_setting('jit')")
        assert cursor.fetchone()[0] == before
