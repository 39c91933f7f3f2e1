"""Matches between members' selfies and photo faces, and members' "not me".

Matching a new selfie against every photo face (`reference_match`),
recomputing every match after a threshold change (`matches_rebuild`), and
hiding a matched photo from a member for good (`photo_dismiss`). A new
photo's faces are matched where they are stored (`photos`, `claims`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import transaction

from faces import index, matching
from faces.models import Dismissal, Match, Photo

if TYPE_CHECKING:
    from members.models import Member


def reference_match(*, reference_id: int, vector: Sequence[float] | np.ndarray) -> int:
    """Store matches of one reference against every photo face (one query)."""
    from members.models import ReferenceFace

    reference = ReferenceFace.objects.only("id", "member_id").get(pk=reference_id)
    hits = index.faces_near(vector, threshold=settings.THROWBACK_MATCH_THRESHOLD)
    Match.objects.bulk_create(
        [
            Match(member_id=reference.member_id, reference=reference, face_id=face_id, distance=d)
            for face_id, d in hits
        ],
        ignore_conflicts=True,
    )
    return len(hits)


@transaction.atomic
def matches_rebuild() -> int:
    """Recompute every stored match (after a threshold change); idempotent."""
    from members.models import ReferenceFace

    matching.match_lock()
    Match.objects.all().delete()
    total = 0
    for reference in ReferenceFace.objects.all().iterator():
        total += reference_match(reference_id=reference.pk, vector=reference.encoding)
    return total


# --- members' "not me" ------------------------------------------------------------
def photo_dismiss(*, member: Member, photo_id: int) -> bool:
    """Hide a photo the member is matched in from them for good ("not me").

    The dismissal is kept per member and photo, so it outlives `rematch`,
    new selfies and re-encoding. Returns False when the photo is not one of
    the member's visible matched photos (nothing is revealed or stored).
    Dismissing twice is harmless.
    """
    if not Photo.objects.matched_to(member, dismissed=True).filter(pk=photo_id).exists():
        return False
    dismissal = Dismissal(member=member, photo_id=photo_id)
    dismissal.full_clean(validate_unique=False, validate_constraints=False)
    Dismissal.objects.bulk_create([dismissal], ignore_conflicts=True)
    return True


def photo_restore(*, member: Member, photo_id: int) -> bool:
    """Undo "not me": the photo shows again. False when the member had not dismissed it."""
    deleted, _ = Dismissal.objects.filter(member=member, photo_id=photo_id).delete()
    return deleted > 0
