"""The look-alike guard: two members' selfies within the threshold warn both, show nothing of the other."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client

from members.lookalikes import lookalikes_rebuild, member_has_lookalike
from members.models import LookAlike, Member
from members.services import member_face_data_delete, reference_add, reference_delete
from tests.factories import MemberFactory, reference_with, unit

pytestmark = pytest.mark.django_db

WARNING = "Someone looks a lot like you"


def selfie_page(member: Member) -> str:
    client = Client()
    client.force_login(member)
    return client.get("/references/").content.decode()


def test_two_members_with_selfies_of_one_face_are_both_warned_and_nothing_of_the_other_is_shown(
    examples: Path, media_root: Path, admin_client: Client
) -> None:
    # obama.jpg and obama2.jpg show the same man: as close as twins' selfies are.
    ada, bo, cy = (MemberFactory(username=name) for name in ("ada_twin", "bo_twin", "cyril"))
    ada_selfie = reference_add(member=ada, data=(examples / "obama.jpg").read_bytes())
    reference_add(member=ada, data=(examples / "obama3.jpg").read_bytes())  # her own: no pair
    assert LookAlike.objects.count() == 0
    bo_selfie = reference_add(member=bo, data=(examples / "obama2.jpg").read_bytes())
    reference_add(member=cy, data=(examples / "biden.jpg").read_bytes())

    pairs = sorted((p.reference.member.username, p.other.member.username) for p in LookAlike.objects.all())
    assert pairs == [("ada_twin", "bo_twin"), ("ada_twin", "bo_twin")]  # both of ada's selfies are near bo's
    for member, others in ((ada, bo), (bo, ada)):
        page = selfie_page(member)
        assert WARNING in page
        assert "Add more selfies" in page
        assert others.username not in page
        for reference in others.references.all():
            assert f"/references/{reference.pk}/" not in page
    assert WARNING not in selfie_page(cy)

    # The admin lists the pair by member, without faces or encodings.
    listing = admin_client.get("/admin/members/lookalike/").content.decode()
    assert listing.count('<td class="field-first_member">ada_twin</td>') == 2
    assert '<td class="field-second_member">bo_twin</td>' in listing
    assert "<img" not in listing and "field0" not in listing and "face.jpg" not in listing

    # Current when selfies go: bo deletes his, ada's warning goes with it.
    assert reference_delete(member=bo, reference_id=bo_selfie.pk)
    assert not member_has_lookalike(ada) and WARNING not in selfie_page(ada)
    bo_selfie = reference_add(member=bo, data=(examples / "obama2.jpg").read_bytes())
    assert member_has_lookalike(ada)
    member_face_data_delete(member=ada)
    assert LookAlike.objects.count() == 0 and not member_has_lookalike(bo)
    assert ada_selfie.pk not in LookAlike.objects.values_list("reference", flat=True)


def test_rematch_rebuilds_the_pairs_at_the_current_threshold(settings) -> None:  # type: ignore[no-untyped-def]
    ada, bo, cy = (MemberFactory(username=name) for name in ("ada", "bo", "cy"))
    near = unit(1) * 0.2  # 0.2 from the next one: within 0.49
    a = reference_with(ada, unit(1))
    b = reference_with(bo, unit(1) + near)
    reference_with(cy, unit(2))  # far from both
    reference_with(ada, unit(1) - near)  # ada's own second selfie

    assert lookalikes_rebuild() == 2  # a–b (0.2) and ada's second–b (0.4)
    assert sorted(LookAlike.objects.values_list("reference", "other")) == [
        (a.pk, b.pk),
        (b.pk, b.pk + 2),
    ]
    assert LookAlike.objects.get(reference=a).distance == pytest.approx(0.2, abs=1e-6)
    settings.THROWBACK_MATCH_THRESHOLD = 0.3
    out = io.StringIO()
    call_command("rematch", stdout=out)
    assert out.getvalue().endswith("; 1 look-alike selfie pairs\n")
    assert list(LookAlike.objects.values_list("reference", "other")) == [(a.pk, b.pk)]
    assert np.isclose(LookAlike.objects.get().distance, 0.2)
