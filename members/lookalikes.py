"""The look-alike guard: selfies of two members within the match threshold.

Siblings and twins match each other's photos. When a selfie lies within
another member's selfie's match limit (THROWBACK_MATCH_THRESHOLD, tightened
per reference by faces.limits), a LookAlike row records
the pair; both members are warned on their selfie page (nothing of the other
member is shown) and asked to add selfies, and the admin lists the pairs.
The distances come from faces.matching, the one place distance SQL is built.
Rows go with either selfie (CASCADE), so deleting a selfie or all one's data
keeps the list current; `lookalikes_rebuild` recomputes it after a threshold
change (`manage.py rematch` calls it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import transaction
from django.db.models import Q

from faces import matching
from members.models import LookAlike, Member, ReferenceFace


def _pairs(selfies: Sequence[tuple[int, int, np.ndarray]]) -> dict[tuple[int, int], float]:
    """(lower selfie id, higher selfie id) → distance, for selfies near another member's."""
    owner = {selfie_id: member_id for selfie_id, member_id, _ in selfies}
    hits = matching.references_near_faces([(selfie_id, vector) for selfie_id, _, vector in selfies])
    # The "face" of each hit is the selfie compared; its own member's references do not
    # count, nor references Throwback derived (mean, learned): only selfies are compared.
    others = [hit for hit in hits if hit.member_id != owner[hit.face_id]]
    selfie_ids = set(
        ReferenceFace.objects.selfies()
        .filter(pk__in={hit.reference_id for hit in others})
        .values_list("pk", flat=True)
    )
    return {
        (min(hit.face_id, hit.reference_id), max(hit.face_id, hit.reference_id)): hit.distance
        for hit in others
        if hit.reference_id in selfie_ids
    }


def lookalikes_store(*, reference: ReferenceFace, vector: np.ndarray) -> int:
    """Record the other members' selfies within the threshold of a new selfie; how many.

    Called by reference_add inside its transaction (under the match lock, so
    two members' uploads at the same moment still see each other).
    """
    pairs = _pairs([(reference.pk, reference.member_id, vector)])
    LookAlike.objects.bulk_create(
        [LookAlike(reference_id=a, other_id=b, distance=d) for (a, b), d in pairs.items()],
        ignore_conflicts=True,
    )
    return len(pairs)


def lookalikes_rebuild() -> int:
    """Recompute every pair at the current limits (after a change of them); how many there are."""
    selfies = [
        (selfie.pk, selfie.member_id, selfie.encoding)
        for selfie in ReferenceFace.objects.selfies().order_by("pk").defer("image")
    ]
    with transaction.atomic():
        matching.match_lock()  # no selfie is added meanwhile and missed
        pairs = _pairs(selfies)
        LookAlike.objects.all().delete()
        LookAlike.objects.bulk_create(
            [LookAlike(reference_id=a, other_id=b, distance=d) for (a, b), d in sorted(pairs.items())]
        )
    return len(pairs)


def member_has_lookalike(member: Member) -> bool:
    """Whether one of the member's selfies lies within the threshold of another member's."""
    return LookAlike.objects.filter(Q(reference__member=member) | Q(other__member=member)).exists()
