"""The admin's member deletion: the member's selfie files leave storage too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from faces.models import Match
from members.models import Member, ReferenceFace
from tests.factories import MemberFactory, PhotoFactory, face_with

pytestmark = pytest.mark.django_db


def reference_with_file(member: Member) -> str:
    """A stored reference of member, matched in one photo; the name of its file."""
    reference = ReferenceFace(member=member, top=0, right=10, bottom=10, left=0)
    reference.set_encoding(np.zeros(128))
    reference.image.save("selfie.jpg", ContentFile(b"jpeg bytes"), save=False)
    reference.save()
    face = face_with(PhotoFactory(), np.zeros(128))
    Match.objects.create(member=member, reference=reference, face=face, distance=0.0)
    assert default_storage.exists(reference.image.name)
    return reference.image.name


def test_deleting_a_member_in_the_admin_deletes_their_selfie_files(
    admin_client: Client, media_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    member = MemberFactory(username="leaver")
    names = [reference_with_file(member), reference_with_file(member)]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/members/member/{member.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/members/member/"
    assert not Member.objects.filter(pk=member.pk).exists()
    assert ReferenceFace.objects.count() == 0
    assert Match.objects.count() == 0
    assert [default_storage.exists(name) for name in names] == [False, False]


def test_bulk_deleting_members_in_the_admin_deletes_their_selfie_files(
    admin_client: Client, media_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    leavers = [MemberFactory(username="leaver1"), MemberFactory(username="leaver2")]
    names = [reference_with_file(member) for member in leavers]
    kept = reference_with_file(MemberFactory(username="stayer"))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/members/member/",
            {"action": "delete_selected", "_selected_action": [m.pk for m in leavers], "post": "yes"},
        )
    assert response.status_code == 302
    assert sorted(Member.objects.values_list("username", flat=True)) == ["admin", "stayer"]
    assert list(ReferenceFace.objects.values_list("member__username", flat=True)) == ["stayer"]
    # The leavers' photos are assigned again: the stayer's selfie (the same face) takes them.
    assert set(Match.objects.values_list("member__username", flat=True)) == {"stayer"}
    assert [default_storage.exists(name) for name in names] == [False, False]
    assert default_storage.exists(kept)
