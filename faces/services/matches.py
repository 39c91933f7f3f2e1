"""Matches between members' references and photo faces, and members' "not me".

Matching a new reference against every photo face (`reference_match`),
recomputing every match after a rule change (`matches_rebuild`), and
hiding a matched photo from a member for good (`photo_dismiss`, which also
drops a reference learned from that photo). A new
photo's faces are matched where they are stored (`photos`, `claims`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from django.db import transaction

from faces import index, matching
from faces.models import Dismissal, Match, Photo, Suggestion
from faces.services import assignment

if TYPE_CHECKING:
    from members.models import Member


def reference_match(*, reference_id: int, vector: Sequence[float] | np.ndarray) -> int:
    """Match one reference against every photo face; returns its matches.

    One `faces_near` at the reference's own limit (widened by the "Is this
    you?" band) finds the photos it touches; those photos are then assigned
    again with every reference (one face, one person), so a face this
    reference is closer to moves to its member. Call holding the match lock.
    """
    from members.models import ReferenceFace

    reference = ReferenceFace.objects.only("id", "match_limit").get(pk=reference_id)
    hits = index.faces_near(vector, threshold=reference.match_limit * assignment.band())
    assignment.photos_rematch(assignment.photos_of_faces(face_id for face_id, _ in hits))
    return Match.objects.filter(reference_id=reference_id).count()


@transaction.atomic
def matches_rebuild() -> int:
    """Recompute every stored match and open suggestion (after a rule change); idempotent.

    Each reference's `faces_near` (at its limit, widened by the band) names the
    photos it touches; only those photos can have matches, and they are
    assigned again all together.
    """
    from members.models import ReferenceFace

    matching.match_lock()
    Match.objects.all().delete()
    Suggestion.objects.filter(answer=Suggestion.Answer.OPEN).delete()
    faces: set[int] = set()
    for reference in ReferenceFace.objects.all().iterator():
        hits = index.faces_near(reference.encoding, threshold=reference.match_limit * assignment.band())
        faces.update(face_id for face_id, _ in hits)
    return assignment.photos_rematch(assignment.photos_of_faces(faces))


# --- members' "not me" ------------------------------------------------------------
def photo_dismiss(*, member: Member, photo_id: int) -> bool:
    """Hide a photo the member is matched in from them for good ("not me").

    The dismissal is kept per member and photo, so it outlives `rematch`,
    new selfies and re-encoding. Returns False when the photo is not one of
    the member's visible matched photos (nothing is revealed or stored).
    Dismissing twice is harmless.
    """
    if Dismissal.objects.filter(member=member, photo_id=photo_id).exists():
        return True  # dismissed before (its matches are gone since: a dismissed pair is never assigned)
    if not Photo.objects.matched_to(member, dismissed=True).filter(pk=photo_id).exists():
        return False
    from members.models import ReferenceFace

    dismissal = Dismissal(member=member, photo_id=photo_id)
    dismissal.full_clean(validate_unique=False, validate_constraints=False)
    with transaction.atomic():
        matching.match_lock()
        Dismissal.objects.bulk_create([dismissal], ignore_conflicts=True)
        # A reference learned (or confirmed) from a face of this photo is wrong:
        # it goes, with its matches, and the photos it was matched in are
        # assigned again without it (this photo too: its face may be someone else's).
        derived = ReferenceFace.objects.filter(member=member, source_face__photo_id=photo_id)
        photos = {photo_id} | set(
            Match.objects.filter(reference__in=derived).values_list("face__photo_id", flat=True)
        )
        derived.delete()
        assignment.photos_rematch(photos)
    return True


def photo_restore(*, member: Member, photo_id: int) -> bool:
    """Undo "not me": the photo is assigned again, so it shows when a face in it is still the member's.

    `photo_dismiss` dropped the member's matches in it (and any reference
    learned from it), so the photo's faces go through the assignment again.
    False when the member had not dismissed it.
    """
    with transaction.atomic():
        matching.match_lock()
        deleted, _ = Dismissal.objects.filter(member=member, photo_id=photo_id).delete()
        if deleted:
            assignment.photos_rematch({photo_id})
    return deleted > 0
