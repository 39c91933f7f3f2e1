"""One face, one person; learned references; and that they obey every privacy rule (issue 14).

Encodings are made by hand, so every distance is known exactly: a member's
selfie sits at a point, photo faces at chosen distances from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from faces.matching import Hit
from faces.models import Album, Match, Photo, Suggestion
from faces.services import photo_dismiss, reference_match, references_refresh
from faces.services.assignment import assign, photos_rematch
from faces.services.learning import member_learn
from members.models import Member, ReferenceFace
from members.services import member_face_data_delete
from tests.factories import AlbumFactory, MemberFactory, PhotoFactory, face_with, reference_with, unit
from thalia.models import AlbumAccess

pytestmark = pytest.mark.django_db


def at(base: np.ndarray, **steps: float) -> np.ndarray:
    """base moved along axes: at(a, e1=0.2, e2=0.3) is a + 0.2·e1 + 0.3·e2."""
    vector = base.astype(np.float64).copy()
    for axis, step in steps.items():
        vector[int(axis[1:])] += step
    return vector


A = unit(0) * 0.5  # ada's face
B = at(A, e100=0.3)  # bob looks like ada: 0.3 apart


def photo_with(*vectors: np.ndarray, album: Album | None = None) -> Photo:
    photo = PhotoFactory(album=album or AlbumFactory())
    for vector in vectors:
        face_with(photo, vector)
    return photo


def selfie(member: Member, vector: np.ndarray) -> ReferenceFace:
    """A selfie matched the way an upload matches it."""
    reference = reference_with(member, vector)
    reference_match(reference_id=reference.pk, vector=reference.encoding)
    return reference


def shown(member: Member) -> list[int]:
    return sorted(Photo.objects.matched_to(member).values_list("pk", flat=True))


def matched_faces(member: Member) -> set[int]:
    return set(Match.objects.filter(member=member).values_list("face_id", flat=True))


# --- one face, one person -----------------------------------------------------------------
def test_in_a_photo_of_two_look_alikes_each_face_goes_to_the_closer_member(media_root: Path) -> None:
    ada, bob = MemberFactory(username="ada"), MemberFactory(username="bob")
    # Both faces are within 0.49 of both selfies (0.3 apart); each is closer to one.
    together = photo_with(at(A, e100=0.05), at(B, e101=0.1))
    ada_face, bob_face = together.faces.order_by("id")
    # A photo of bob alone, also within ada's limit (0.3 + a little).
    bob_alone = photo_with(at(B, e102=0.05))
    # Two faces near ada in one photo: she is one face, the closer (the other is 0.5 from bob).
    twice = photo_with(at(A, e100=-0.2), at(A, e104=0.1))

    selfie(ada, A)
    selfie(bob, B)

    assert matched_faces(ada) == {ada_face.pk, twice.faces.order_by("id")[1].pk}
    assert matched_faces(bob) == {bob_face.pk, bob_alone.faces.get().pk}
    assert shown(ada) == sorted([together.pk, twice.pk])
    assert shown(bob) == sorted([together.pk, bob_alone.pk])


def test_without_bob_his_photo_goes_to_ada_and_comes_back_when_bob_deletes_his_data(media_root: Path) -> None:
    ada, bob = MemberFactory(username="ada"), MemberFactory(username="bob")
    bob_alone = photo_with(at(B, e102=0.05))
    selfie(ada, A)
    assert shown(ada) == [bob_alone.pk]  # the look-alike, within her limit

    selfie(bob, B)
    assert shown(ada) == [] and shown(bob) == [bob_alone.pk]

    member_face_data_delete(member=bob)
    assert shown(ada) == [bob_alone.pk] and shown(bob) == []


def test_the_assignment_takes_closest_pairs_first_whatever_the_order_of_hits() -> None:
    photo_of = {1: 10, 2: 10, 3: 11}
    hits = [
        Hit(face_id=1, reference_id=100, member_id=7, distance=0.30, limit=0.49),  # ada ~ face 1
        Hit(face_id=2, reference_id=100, member_id=7, distance=0.20, limit=0.49),  # ada ~ face 2 (closer)
        Hit(face_id=2, reference_id=200, member_id=8, distance=0.10, limit=0.49),  # bob ~ face 2 (closest)
        Hit(face_id=3, reference_id=100, member_id=7, distance=0.52, limit=0.49),  # band only
        Hit(face_id=3, reference_id=200, member_id=8, distance=0.40, limit=0.49),
    ]
    for ordered in (hits, hits[::-1]):
        result = assign(ordered, photo_of)
        assert sorted((h.member_id, h.face_id) for h in result.matches) == [(7, 1), (8, 2), (8, 3)]
        # Face 3 went to bob, so ada is not asked about it.
        assert result.suggestions == []
    loose = assign(hits, photo_of, one_face=False)
    assert sorted((h.member_id, h.face_id) for h in loose.matches) == [(7, 1), (7, 2), (8, 2), (8, 3)]
    dismissed = assign(hits, photo_of, dismissed={(8, 10)})
    assert sorted((h.member_id, h.face_id) for h in dismissed.matches) == [(7, 2), (8, 3)]


# --- learned references ----------------------------------------------------------------------
@pytest.fixture
def learning(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_LEARNED_PER_SELFIE = 2


def ada_with_photos(album: Album | None = None) -> tuple[Member, list[Photo], Photo]:
    """Ada, five photos at 0.2 … 0.4 from her selfie, and one (far) only a learned face reaches."""
    ada = MemberFactory(username="ada")
    near = [photo_with(at(A, **{f"e{10 + i}": d})) for i, d in enumerate((0.2, 0.25, 0.3, 0.35, 0.4))]
    # 0.54 from the selfie (outside its 0.49), 0.39 from the first photo's face.
    far = photo_with(at(A, e10=0.45, e20=0.3), album=album)
    selfie(ada, A)
    return ada, near, far


def learned(member: Member) -> list[int]:
    """The photos the member's learned references copy a face of."""
    return sorted(
        ReferenceFace.objects.filter(member=member, kind=ReferenceFace.Kind.LEARNED).values_list(
            "source_face__photo_id", flat=True
        )
    )


def test_the_strictest_matches_become_learned_references_capped_per_selfie(
    media_root: Path, learning
) -> None:  # type: ignore[no-untyped-def]
    ada, near, far = ada_with_photos()
    assert shown(ada) == sorted(p.pk for p in near)

    summary = references_refresh()

    # Two per selfie, the closest first; the far photo is found through them.
    assert learned(ada) == [near[0].pk, near[1].pk]
    assert (summary.learned_added, summary.learned_removed) == (2, 0)
    assert shown(ada) == sorted([*(p.pk for p in near), far.pk])
    # Idempotent: nothing changes on a second run.
    again = references_refresh()
    assert (again.learned_added, again.learned_removed, again.limits_changed) == (0, 0, 0)
    # Learning off removes them, and the far photo with them.
    references_refresh(learn=False)
    assert learned(ada) == [] and far.pk not in shown(ada)


def test_learned_references_are_never_shown_to_anyone(
    media_root: Path, learning, admin_client: Client
) -> None:  # type: ignore[no-untyped-def]
    ada, _, _ = ada_with_photos()
    references_refresh()
    learned_ids = list(
        ReferenceFace.objects.filter(kind=ReferenceFace.Kind.LEARNED).values_list("pk", flat=True)
    )
    assert len(learned_ids) == 2
    client = Client()
    client.force_login(ada)
    (selfie_ref,) = ReferenceFace.objects.filter(kind=ReferenceFace.Kind.SELFIE)
    assert [r["id"] for r in client.get("/api/references/").json()] == [selfie_ref.pk]
    page = client.get(reverse("members:references")).content.decode()
    assert page.count('class="references"') == 1 and page.count("Selfie added") == 1
    for pk in learned_ids:
        assert client.get(reverse("members:reference_face", args=[pk])).status_code == 404
        assert client.post(reverse("members:reference_delete", args=[pk])).status_code == 404
        assert admin_client.get(f"/admin/members/referenceface/{pk}/change/").status_code == 302  # not found
    changelist = admin_client.get("/admin/members/referenceface/").content.decode()
    assert f"/admin/members/referenceface/{selfie_ref.pk}/change/" in changelist
    assert all(f"/admin/members/referenceface/{pk}/change/" not in changelist for pk in learned_ids)


def test_not_me_on_a_learned_photo_removes_its_learned_reference_for_good(media_root: Path, learning) -> None:  # type: ignore[no-untyped-def]
    ada, near, far = ada_with_photos()
    references_refresh()
    assert far.pk in shown(ada)

    assert photo_dismiss(member=ada, photo_id=near[0].pk)

    # The reference learned from that photo is gone, and the far photo it found too.
    assert near[0].pk not in learned(ada)
    assert far.pk not in shown(ada) and near[0].pk not in shown(ada)
    # The next refresh learns the next strictest face, never the dismissed one.
    references_refresh()
    assert learned(ada) == [near[1].pk, near[2].pk]
    assert near[0].pk not in shown(ada)


def test_delete_all_my_data_removes_learned_references_and_suggestions(media_root: Path, learning) -> None:  # type: ignore[no-untyped-def]
    ada, _, _ = ada_with_photos()
    band = photo_with(at(A, e30=0.53))  # in ada's "Is this you?" band (0.49 × 1.15)
    photos_rematch([band.pk])  # as its import would
    references_refresh()
    assert ReferenceFace.objects.filter(member=ada, kind=ReferenceFace.Kind.LEARNED).count() == 2
    assert Suggestion.objects.filter(member=ada).count() == 1

    deleted = member_face_data_delete(member=ada)

    assert deleted.references == 1  # selfies
    assert not ReferenceFace.objects.filter(member=ada).exists()
    assert not Suggestion.objects.filter(member=ada).exists()
    assert not Match.objects.filter(member=ada).exists()


def test_a_face_another_member_confirmed_is_never_learned(media_root: Path, learning) -> None:  # type: ignore[no-untyped-def]
    ada, near, far = ada_with_photos()
    bob = MemberFactory(username="bob")
    # Bob says the face of ada's closest photo is his (a "Yes" to "Is this you?").
    face = near[0].faces.get()
    confirmed = ReferenceFace(
        member=bob, kind=ReferenceFace.Kind.CONFIRMED, source_face=face, match_limit=0.49
    )
    confirmed.set_encoding(face.encoding)
    confirmed.save()
    reference_match(reference_id=confirmed.pk, vector=confirmed.encoding)

    references_refresh()

    assert near[0].pk not in learned(ada)
    assert learned(ada) == [near[1].pk, near[2].pk]
    assert near[0].pk in shown(bob) and near[0].pk not in shown(ada)


# --- a photo found through a learned reference obeys every privacy rule ------------------------
def test_a_photo_found_by_a_learned_reference_is_hidden_with_its_album(media_root: Path, learning) -> None:  # type: ignore[no-untyped-def]
    hidden = AlbumFactory(hidden=True)
    ada, _, far = ada_with_photos(album=hidden)
    references_refresh()
    assert Match.objects.filter(member=ada, face__photo=far).exists()  # matched…
    assert far.pk not in shown(ada)  # …but never shown
    client = Client()
    client.force_login(ada)
    assert client.get(reverse("faces:photo", args=[far.pk])).status_code == 404
    assert client.get(reverse("faces:photo_file", args=[far.pk])).status_code == 404
    assert far.pk not in [p["id"] for p in client.get("/api/photos/").json()["results"]]


def test_a_photo_found_by_a_learned_reference_stays_dismissed(media_root: Path, learning) -> None:  # type: ignore[no-untyped-def]
    ada, _, far = ada_with_photos()
    references_refresh()
    assert photo_dismiss(member=ada, photo_id=far.pk)
    references_refresh()
    assert far.pk not in shown(ada)


def test_a_photo_found_by_a_learned_reference_needs_the_websites_album_access(
    media_root: Path, learning
) -> None:  # type: ignore[no-untyped-def]
    website = AlbumFactory(source=Album.Source.CONCREXIT, source_id="gala-2019")
    ada, _, far = ada_with_photos(album=website)
    Member.objects.filter(pk=ada.pk).update(thalia_id="42")
    ada.refresh_from_db()
    references_refresh()
    assert Match.objects.filter(member=ada, face__photo=far).exists()
    assert far.pk not in shown(ada)
    AlbumAccess.objects.create(member=ada, album_slug="gala-2019")
    assert far.pk in shown(ada)


def test_photos_rematch_recomputes_exactly_what_matching_stored(media_root: Path, learning) -> None:  # type: ignore[no-untyped-def]
    ada, near, far = ada_with_photos()
    bob = MemberFactory(username="bob")
    selfie(bob, B)
    references_refresh()
    before = sorted(Match.objects.values_list("member_id", "reference_id", "face_id"))
    photos_rematch(Photo.objects.values_list("pk", flat=True))
    assert sorted(Match.objects.values_list("member_id", "reference_id", "face_id")) == before


def test_each_extra_selfie_tightens_all_of_the_members_limits(media_root: Path, learning) -> None:  # type: ignore[no-untyped-def]
    from members.services import reference_delete

    ada, _, _ = ada_with_photos()
    references_refresh()
    for offset in (0.01, 0.02):
        extra = reference_with(ada, at(A, e50=offset))
        member_learn(member_id=ada.pk)  # as reference_add ends

    def limits() -> dict[str, set[float]]:
        found: dict[str, set[float]] = {}
        for kind, limit in ReferenceFace.objects.filter(member=ada).values_list("kind", "match_limit"):
            found.setdefault(kind, set()).add(round(limit, 6))
        return found

    # Three selfies: 0.49 − 2 × 0.01 for every reference of hers, the mean and learned ones too.
    assert limits() == {"selfie": {0.47}, "mean": {0.47}, "learned": {0.47}}
    assert reference_delete(member=ada, reference_id=extra.pk)
    assert limits() == {"selfie": {0.48}, "mean": {0.48}, "learned": {0.48}}
