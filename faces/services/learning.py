"""References Throwback derives for a member: limits, the mean of the selfies, learned faces, "Yes".

Measured in docs/accuracy.md (bench/accuracy_sim.py, `manage.py evaluate`):

- every reference's `match_limit` comes from faces/limits.py and is computed
  again when the collection grows (`references_refresh`, which every import
  calls at its end) and when the reference is added;
- with two or more selfies, their mean encoding is one more reference (`MEAN`);
- learned references (query expansion, one round): a member's matches far
  inside a selfie's limit become references of kind `LEARNED`, at most
  THROWBACK_LEARNED_PER_SELFIE per selfie, the strictest first. They are
  chosen only from matches of the member's own selfies, their mean and the
  faces they confirmed, never from matches of learned references, so they
  cannot drift away from the selfies; never a face another member confirmed,
  never a copy of the selfie itself; with two or more selfies the face must
  lie within the limits of two of them. They are never shown to anyone, go
  with "Not me" on their photo and with "Delete all my data";
- "Is this you?": "Yes" makes the face a `CONFIRMED` reference, "No" keeps
  the face away from the member for good (`suggestion_answer`).

Every change of references ends with `assignment.photos_rematch` for the
photos concerned, so the photos a member sees always follow the rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from faces import index, limits, matching
from faces.fields import ENCODING_FIELDS
from faces.models import FaceEncoding, Match, Photo, Suggestion
from faces.services import assignment

if TYPE_CHECKING:
    from members.models import Member

# Learn only faces within this share of a selfie's limit ("far inside").
LEARN_MAX_RATIO = 0.9
# A face this close to a selfie is that selfie's own photo: it teaches nothing.
COPY_DISTANCE = 0.12


@dataclass
class RefreshSummary:
    """What `references_refresh` changed."""

    limits_changed: int = 0
    learned_added: int = 0
    learned_removed: int = 0
    photos_rematched: int = 0


def _kinds() -> Any:
    from members.models import ReferenceFace

    return ReferenceFace.Kind


def references_refresh(*, learn: bool = True) -> RefreshSummary:
    """Recompute every reference's limit, then each member's learned references (one round).

    Idempotent: a second run with no new faces changes nothing. Each step
    runs in its own transaction under the match lock.
    """
    from members.models import ReferenceFace

    summary = RefreshSummary()
    with transaction.atomic():
        matching.match_lock()
        references = list(ReferenceFace.objects.only("id", "member_id", "match_limit", *ENCODING_FIELDS))
        sample = limits.face_sample()
        if references:
            counts = selfie_counts()
            new = limits.limits_for(
                np.asarray([r.encoding for r in references]),
                sample,
                selfies=np.asarray([counts.get(r.member_id, 0) for r in references]),
            )
            changed, photos = _limits_store(references, new)
            summary.limits_changed = len(changed)
            summary.photos_rematched += len(photos)
            assignment.photos_rematch(photos)
    # Every member's learned references are chosen from the matches as they are
    # now, then the photos they touch are assigned again once, together: a photo
    # touched by several members' changes is recomputed once, not once each.
    with transaction.atomic():
        matching.match_lock()
        photos = set()
        members = ReferenceFace.objects.values_list("member_id", flat=True).distinct().order_by("member_id")
        for member_id in list(members):
            added, removed, touched = _member_plan(member_id=member_id, learn=learn, sample=sample)
            summary.learned_added += added
            summary.learned_removed += removed
            photos |= touched
        summary.photos_rematched += len(photos)
        assignment.photos_rematch(photos)
    return summary


def _photos_of_references(reference_ids: Iterable[int]) -> set[int]:
    return set(
        Match.objects.filter(reference_id__in=list(reference_ids)).values_list("face__photo_id", flat=True)
    )


def _photos_near(references: Iterable[object]) -> set[int]:
    """The photos with a face within the (band-widened) limit of each reference."""
    faces: set[int] = set()
    for reference in references:
        hits = index.faces_near(
            reference.encoding,  # type: ignore[attr-defined]
            threshold=reference.match_limit * assignment.band(),  # type: ignore[attr-defined]
        )
        faces.update(face_id for face_id, _ in hits)
    return assignment.photos_of_faces(faces)


def selfie_counts() -> dict[int, int]:
    """member id → number of selfies."""
    from members.models import ReferenceFace

    rows = (
        ReferenceFace.objects.filter(kind=ReferenceFace.Kind.SELFIE)
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    return dict(rows)


def member_learn(
    *, member_id: int, learn: bool = True, sample: np.ndarray | None = None
) -> tuple[int, int, int]:
    """Bring one member's limits, mean and learned references in line with their selfies and matches.

    Call after the member's selfies changed (their number sets every limit of
    theirs, faces/limits.py) or their matches did. `sample` is the face
    sample of faces/limits.py when the caller has read it already. Returns
    (learned added, learned removed, photos assigned again).
    """
    with transaction.atomic():
        matching.match_lock()
        added, removed, photos = _member_plan(member_id=member_id, learn=learn, sample=sample)
        if photos:
            assignment.photos_rematch(photos)
    return added, removed, len(photos)


def _member_plan(*, member_id: int, learn: bool, sample: np.ndarray | None) -> tuple[int, int, set[int]]:
    """member_learn's changes of references, without assigning the photos again: returns the photos to redo."""
    from members.models import ReferenceFace

    kind = ReferenceFace.Kind
    # The caller holds the match lock in its transaction.
    sample = limits.face_sample() if sample is None else sample
    selfies = ReferenceFace.objects.filter(member_id=member_id, kind=kind.SELFIE).count()
    photos = _limits_update(member_id, sample=sample, selfies=selfies)
    photos |= _mean_update(member_id, sample=sample, selfies=selfies)
    per_selfie = settings.THROWBACK_LEARNED_PER_SELFIE if learn else 0
    wanted = learned_choice(member_id=member_id, selfies=selfies, cap=per_selfie * selfies)
    existing = dict(
        ReferenceFace.objects.filter(member_id=member_id, kind=kind.LEARNED).values_list(
            "source_face_id", "id"
        )
    )
    gone = [ref_id for face_id, ref_id in existing.items() if face_id not in wanted]
    photos |= _photos_of_references(gone)
    ReferenceFace.objects.filter(pk__in=gone).delete()
    new = [face_id for face_id in wanted if face_id not in existing]
    added = references_from_faces(member_id=member_id, face_ids=new, kind=kind.LEARNED, sample=sample)
    photos |= _photos_near(added)
    return len(added), len(gone), photos


def _limits_update(member_id: int, *, sample: np.ndarray, selfies: int) -> set[int]:
    """Recompute the limits of the member's references; returns the photos to assign again."""
    from members.models import ReferenceFace

    references = list(
        ReferenceFace.objects.filter(member_id=member_id).only("id", "match_limit", *ENCODING_FIELDS)
    )
    if not references:
        return set()
    new = limits.limits_for(np.asarray([r.encoding for r in references]), sample, selfies=selfies)
    return _limits_store(references, new)[1]


def _limits_store(references: list[Any], new: np.ndarray) -> tuple[list[Any], set[int]]:
    """Store the limits that moved by LIMIT_TOLERANCE or more; returns those references and the photos to redo
    (the photos of their old matches and those within their new, band-widened limits)."""
    from members.models import ReferenceFace

    changed = []
    for reference, limit in zip(references, new.tolist(), strict=True):
        if abs(reference.match_limit - limit) >= limits.LIMIT_TOLERANCE:
            reference.match_limit = limit
            changed.append(reference)
    photos = _photos_of_references([r.pk for r in changed])
    ReferenceFace.objects.bulk_update(changed, ["match_limit"], batch_size=500)
    return changed, photos | _photos_near(changed)


def _mean_update(member_id: int, *, sample: np.ndarray, selfies: int) -> set[int]:
    """Keep the member's MEAN reference equal to the mean of their selfies (two or more); returns photos to redo."""
    from members.models import ReferenceFace

    kind = ReferenceFace.Kind
    encodings = [r.encoding for r in ReferenceFace.objects.filter(member_id=member_id, kind=kind.SELFIE)]
    mean = ReferenceFace.objects.filter(member_id=member_id, kind=kind.MEAN).first()
    photos = _photos_of_references([mean.pk]) if mean else set()
    if len(encodings) < 2:
        if mean:
            mean.delete()
        return photos
    vector = np.mean(np.asarray(encodings, dtype=np.float64), axis=0)
    if mean is not None and np.allclose(mean.encoding, vector, atol=1e-6):
        return set()
    if mean is None:
        mean = ReferenceFace(member_id=member_id, kind=kind.MEAN)
    mean.set_encoding(vector)
    mean.match_limit = float(limits.limits_for(vector, sample, selfies=selfies)[0])
    mean.full_clean(exclude=["member"])
    mean.save()
    return photos | _photos_near([mean])


def learned_choice(*, member_id: int, selfies: int, cap: int) -> list[int]:
    """The faces (ids) the member's learned references should copy, strictest first, at most cap."""
    from members.models import ReferenceFace

    kind = ReferenceFace.Kind
    if cap <= 0 or selfies == 0:
        return []
    rows = Match.objects.filter(
        member_id=member_id, reference__kind__in=[kind.SELFIE, kind.MEAN, kind.CONFIRMED]
    ).values_list("face_id", "reference__kind", "distance", "reference__match_limit")
    ratio: dict[int, float] = {}
    nearest: dict[int, float] = defaultdict(lambda: 2.0)
    agreeing: dict[int, int] = defaultdict(int)
    for face_id, ref_kind, distance, limit in rows:
        ratio[face_id] = min(ratio.get(face_id, 2.0), distance / limit if limit else 2.0)
        nearest[face_id] = min(nearest[face_id], distance)
        agreeing[face_id] += ref_kind == kind.SELFIE
    confirmed_by_others = set(
        ReferenceFace.objects.filter(kind=kind.CONFIRMED, source_face_id__in=list(ratio))
        .exclude(member_id=member_id)
        .values_list("source_face_id", flat=True)
    )
    candidates = sorted(
        (r, face_id)
        for face_id, r in ratio.items()
        if r <= LEARN_MAX_RATIO
        and nearest[face_id] >= COPY_DISTANCE
        and (selfies < 2 or agreeing[face_id] >= 2)
        and face_id not in confirmed_by_others
    )
    return [face_id for _, face_id in candidates[:cap]]


def references_from_faces(
    *, member_id: int, face_ids: Iterable[int], kind: str, sample: np.ndarray | None = None
) -> list[object]:
    """New references of the member copying these photo faces (encoding, box), each with its limit."""
    from members.models import ReferenceFace

    faces = list(FaceEncoding.objects.filter(pk__in=list(face_ids)))
    if not faces:
        return []
    sample = limits.face_sample() if sample is None else sample
    selfies = ReferenceFace.objects.filter(member_id=member_id, kind=ReferenceFace.Kind.SELFIE).count()
    limit_values = limits.limits_for(np.asarray([f.encoding for f in faces]), sample, selfies=selfies)
    references = []
    for face, limit in zip(faces, limit_values.tolist(), strict=True):
        reference = ReferenceFace(
            member_id=member_id,
            kind=kind,
            source_face=face,
            top=face.top,
            right=face.right,
            bottom=face.bottom,
            left=face.left,
            match_limit=limit,
        )
        reference.set_encoding(face.encoding)
        reference.full_clean(exclude=["member", "source_face"], validate_constraints=False)
        references.append(reference)
    ReferenceFace.objects.bulk_create(references, ignore_conflicts=True)
    return list(
        ReferenceFace.objects.filter(member_id=member_id, kind=kind, source_face_id__in=[f.pk for f in faces])
    )


def suggestion_answer(*, member: Member, suggestion_id: int, yes: bool) -> bool:
    """Record a member's answer to "Is this you?"; False when it is not their open offer.

    Only an open offer in a photo the member may see (`Photo.objects.visible_to`)
    can be answered. "Yes" makes the face a confirmed reference of the member
    (matched at once, which shows the photo) and runs their learning again;
    "No" keeps the face from ever being matched to or offered to them again.
    """
    member_id = member.pk
    with transaction.atomic():
        matching.match_lock()
        suggestion = (
            Suggestion.objects.select_for_update(of=("self",))
            .filter(
                member_id=member_id,
                pk=suggestion_id,
                answer=Suggestion.Answer.OPEN,
                face__photo__in=Photo.objects.visible_to(member).values("pk"),
            )
            .select_related("face")
            .first()
        )
        if suggestion is None:
            return False
        suggestion.answer = Suggestion.Answer.YES if yes else Suggestion.Answer.NO
        suggestion.answered_at = timezone.now()
        suggestion.save(update_fields=["answer", "answered_at"])
        if yes:
            added = references_from_faces(
                member_id=member_id, face_ids=[suggestion.face_id], kind=_kinds().CONFIRMED
            )
            assignment.photos_rematch({suggestion.face.photo_id} | _photos_near(added))
    if yes:
        member_learn(member_id=member_id)
    return True
