"""One face, one person: turning distance hits into a photo's matches and "Is this you?" offers.

`Match` rows are what members are shown, so they are derived per photo from
every reference's hits on that photo's faces (docs/accuracy.md):

- a hit counts when the face is within its reference's own limit, the member
  did not dismiss the photo ("not me") and did not answer "No" about the face;
- in a photo, a member is at most one face and a face at most one member:
  pairs are taken closest first (member's smallest distance to the face),
  skipping a face or a member already taken;
- a face within THROWBACK_SUGGEST_BAND × a member's limit but outside it,
  taken by no one, in a photo where the member has no face, becomes an open
  `Suggestion` for that member.

`photos_rematch` recomputes the matches and open suggestions of whole photos
from the references as they are now, so anything that changes references
(a selfie added or deleted, learned references, "delete my data") ends with
it for the photos concerned; its callers hold the match lock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings

from faces import matching
from faces.fields import ENCODING_FIELDS
from faces.models import Dismissal, FaceEncoding, Match, Suggestion

# Photos recomputed per statement batch.
PHOTO_CHUNK = 500


@dataclass(frozen=True)
class Assignment:
    """What the rule keeps of a batch of hits."""

    matches: list[matching.Hit]
    suggestions: list[matching.Hit]


def assign(
    hits: Iterable[matching.Hit],
    photo_of: Mapping[int, int],
    *,
    dismissed: set[tuple[int, int]] = frozenset(),  # type: ignore[assignment]
    refused: set[tuple[int, int]] = frozenset(),  # type: ignore[assignment]
    one_face: bool = True,
) -> Assignment:
    """Apply one face, one person to hits (widened or not) of whole photos.

    photo_of maps each face id to its photo; dismissed holds (member, photo)
    pairs ("not me"), refused (member, face) pairs (answered "No"). Every hit of
    a member on the face they were given is kept (one Match per reference);
    ties are broken by member and face id, so the result does not depend on
    the order of hits. Without `one_face` every hit within its limit is kept
    (the rule before issue 14, for measuring).
    """
    within: dict[tuple[int, int], list[matching.Hit]] = defaultdict(list)
    outside: dict[tuple[int, int], float] = {}
    outside_hit: dict[tuple[int, int], matching.Hit] = {}
    for hit in hits:
        key = (hit.member_id, hit.face_id)
        if (hit.member_id, photo_of[hit.face_id]) in dismissed or key in refused:
            continue
        if hit.within:
            within[key].append(hit)
        elif key not in outside or hit.distance < outside[key]:
            outside[key], outside_hit[key] = hit.distance, hit
    candidates: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    for (member, face), member_hits in within.items():
        candidates[photo_of[face]].append((min(h.distance for h in member_hits), member, face))
    matches: list[matching.Hit] = []
    taken_faces: set[int] = set()
    members_in: set[tuple[int, int]] = set()  # (member, photo)
    for photo, pairs in candidates.items():
        for _, member, face in sorted(pairs):
            if one_face and (face in taken_faces or (member, photo) in members_in):
                continue
            taken_faces.add(face)
            members_in.add((member, photo))
            matches += within[(member, face)]
    suggestions = [
        hit
        for (member, face), hit in sorted(outside_hit.items())
        if face not in taken_faces and (member, photo_of[face]) not in members_in
    ]
    return Assignment(matches=matches, suggestions=suggestions)


def band() -> float:
    """How far beyond its limit a reference's hits are read (1: no "Is this you?")."""
    return float(settings.THROWBACK_SUGGEST_BAND)


def hits_store(hits: Sequence[matching.Hit], photo_of: Mapping[int, int]) -> list[matching.Hit]:
    """Assign hits of whole photos and store their matches and open suggestions.

    The photos' old matches and open suggestions must be gone already. Returns
    the hits stored as matches.
    """
    members = {hit.member_id for hit in hits}
    photos = set(photo_of.values())
    faces = set(photo_of)
    dismissed = set(
        Dismissal.objects.filter(member_id__in=members, photo_id__in=photos).values_list(
            "member_id", "photo_id"
        )
    )
    refused = set(
        Suggestion.objects.filter(
            member_id__in=members, face_id__in=faces, answer=Suggestion.Answer.NO
        ).values_list("member_id", "face_id")
    )
    result = assign(
        hits, photo_of, dismissed=dismissed, refused=refused, one_face=settings.THROWBACK_ONE_FACE_ONE_PERSON
    )
    Match.objects.bulk_create(
        (
            Match(member_id=h.member_id, reference_id=h.reference_id, face_id=h.face_id, distance=h.distance)
            for h in result.matches
        ),
        batch_size=1000,
        ignore_conflicts=True,
    )
    # A member's earlier answer about a face stays (the unique pair ignores the new row).
    Suggestion.objects.bulk_create(
        (
            Suggestion(member_id=h.member_id, face_id=h.face_id, distance=h.distance)
            for h in result.suggestions
        ),
        batch_size=1000,
        ignore_conflicts=True,
    )
    return result.matches


def photos_rematch(photo_ids: Iterable[int]) -> int:
    """Recompute the matches and open suggestions of these photos; returns the matches stored.

    Reads the photos' faces, compares them with every reference (one
    `references_near_faces` per batch) and stores what `assign` keeps. Call
    inside transaction.atomic() holding the match lock.
    """
    ids = sorted(set(photo_ids))
    stored = 0
    for start in range(0, len(ids), PHOTO_CHUNK):
        chunk = ids[start : start + PHOTO_CHUNK]
        Match.objects.filter(face__photo_id__in=chunk).delete()
        Suggestion.objects.filter(face__photo_id__in=chunk, answer=Suggestion.Answer.OPEN).delete()
        faces = FaceEncoding.objects.filter(photo_id__in=chunk).only("id", "photo_id", *ENCODING_FIELDS)
        pairs = [(face.pk, face.encoding) for face in faces]
        photo_of = {face.pk: face.photo_id for face in faces}
        hits = matching.references_near_faces(pairs, widen=band())
        stored += len(hits_store(hits, photo_of))
    return stored


def photos_of_faces(face_ids: Iterable[int]) -> set[int]:
    """The photos these faces are in."""
    return set(FaceEncoding.objects.filter(pk__in=list(face_ids)).values_list("photo_id", flat=True))


def photos_of_member(member_id: int) -> set[int]:
    """The photos a member has matches or open suggestions in (before deleting their references)."""
    matched = Match.objects.filter(member_id=member_id).values_list("face__photo_id", flat=True)
    offered = Suggestion.objects.filter(member_id=member_id, answer=Suggestion.Answer.OPEN).values_list(
        "face__photo_id", flat=True
    )
    return set(matched) | set(offered)
