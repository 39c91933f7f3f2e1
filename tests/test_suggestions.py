""" "Is this you?": the band just outside a member's limit, answered yes or no (issue 14)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from faces.models import Dismissal, Match, Photo, Suggestion
from faces.services import references_refresh
from faces.services.assignment import photos_rematch
from members.models import Member, ReferenceFace
from tests.factories import AlbumFactory, MemberFactory
from tests.test_learning import A, at, photo_with, selfie, shown

pytestmark = pytest.mark.django_db


def client_for(member: Member) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    client.get(reverse("members:photos"))  # sets the CSRF cookie
    return client


def post(client: Client, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(url, data, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)


def with_file(photo: Photo) -> Photo:
    """Give a folder photo a stored file, width and height (for the crop shown with the question)."""
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), "grey").save(buffer, format="JPEG")
    photo.file.save(f"{photo.pk}.jpg", ContentFile(buffer.getvalue()), save=False)
    photo.width, photo.height = 200, 100
    photo.save()
    return photo


@pytest.fixture
def offered(media_root: Path) -> tuple[Member, Photo, Photo, Photo, Photo]:
    """Ada, matched in one photo; two photos in her band (0.49 to 0.49 × 1.15 = 0.5635); one beyond it."""
    ada = MemberFactory(username="ada")
    matched = with_file(photo_with(at(A, e10=0.3)))
    closer = with_file(photo_with(at(A, e11=0.52)))
    further = with_file(photo_with(at(A, e12=0.55)))
    beyond = photo_with(at(A, e13=0.57))
    selfie(ada, A)
    return ada, matched, closer, further, beyond


def test_faces_just_outside_the_limit_are_offered_closest_first(offered) -> None:  # type: ignore[no-untyped-def]
    ada, matched, closer, further, beyond = offered
    assert shown(ada) == [matched.pk]
    offers = list(Suggestion.objects.filter(member=ada).order_by("distance"))
    assert [o.face.photo_id for o in offers] == [closer.pk, further.pk]
    assert [round(o.distance, 3) for o in offers] == [0.52, 0.55]
    assert all(o.answer == Suggestion.Answer.OPEN for o in offers)

    page = client_for(ada).get(reverse("members:photos")).content.decode()
    assert page.count("Yes, that's me") == 2
    assert reverse("faces:suggestion_answer", args=[offers[0].pk]) in page
    # The question shows a crop of the photo around the face, loaded from the photo's file view.
    assert f'href="{reverse("faces:photo_file", args=[closer.pk])}"' in page


def test_yes_shows_the_photo_and_makes_the_face_a_confirmed_reference(offered) -> None:  # type: ignore[no-untyped-def]
    ada, matched, closer, further, _ = offered
    client = client_for(ada)
    offer = Suggestion.objects.get(member=ada, face__photo=closer)

    response = post(client, reverse("faces:suggestion_answer", args=[offer.pk]), {"answer": "yes"})

    assert response.status_code == 302 and response["Location"] == reverse("members:photos")
    offer.refresh_from_db()
    assert offer.answer == Suggestion.Answer.YES and offer.answered_at is not None
    confirmed = ReferenceFace.objects.get(member=ada, kind=ReferenceFace.Kind.CONFIRMED)
    assert confirmed.source_face_id == offer.face_id
    assert shown(ada) == sorted([matched.pk, closer.pk])
    # Answering again is refused: it is no longer open.
    assert (
        post(client, reverse("faces:suggestion_answer", args=[offer.pk]), {"answer": "no"}).status_code == 404
    )


def test_no_keeps_the_face_away_for_good(offered) -> None:  # type: ignore[no-untyped-def]
    ada, _, closer, _, _ = offered
    client = client_for(ada)
    offer = Suggestion.objects.get(member=ada, face__photo=closer)

    assert (
        post(client, reverse("faces:suggestion_answer", args=[offer.pk]), {"answer": "no"}).status_code == 302
    )

    offer.refresh_from_db()
    assert offer.answer == Suggestion.Answer.NO
    # Rematching and a second selfie right at that face never match or offer it again.
    photos_rematch([closer.pk])
    selfie(ada, closer.faces.get().encoding)
    references_refresh()
    assert closer.pk not in shown(ada)
    assert list(
        Suggestion.objects.filter(member=ada, face__photo=closer).values_list("answer", flat=True)
    ) == [Suggestion.Answer.NO]


def test_only_the_member_can_see_or_answer_their_offer(offered) -> None:  # type: ignore[no-untyped-def]
    ada, _, closer, _, _ = offered
    offer = Suggestion.objects.get(member=ada, face__photo=closer)
    bob = client_for(MemberFactory(username="bob"))
    assert (
        post(bob, reverse("faces:suggestion_answer", args=[offer.pk]), {"answer": "yes"}).status_code == 404
    )
    assert bob.get(reverse("faces:photo_file", args=[closer.pk])).status_code == 404
    assert bob.get("/api/suggestions/").json() == []
    # Ada may load the photo's file to see the face she is asked about.
    assert client_for(ada).get(reverse("faces:photo_file", args=[closer.pk])).status_code == 200
    offer.refresh_from_db()
    assert offer.answer == Suggestion.Answer.OPEN


def test_a_bad_answer_is_refused_and_changes_nothing(offered) -> None:  # type: ignore[no-untyped-def]
    ada, _, closer, _, _ = offered
    client = client_for(ada)
    offer = Suggestion.objects.get(member=ada, face__photo=closer)
    assert (
        post(client, reverse("faces:suggestion_answer", args=[offer.pk]), {"answer": "maybe"}).status_code
        == 400
    )
    response = post(client, f"/api/suggestions/{offer.pk}/", {"answer": ""})
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    offer.refresh_from_db()
    assert offer.answer == Suggestion.Answer.OPEN


def test_the_api_lists_and_answers_offers(offered) -> None:  # type: ignore[no-untyped-def]
    ada, matched, closer, further, _ = offered
    client = client_for(ada)
    listed = client.get("/api/suggestions/").json()
    assert [o["photo"] for o in listed] == [closer.pk, further.pk]
    assert listed[0]["face"] == {"left": 0, "top": 0, "width": 10, "height": 10}
    assert listed[0]["url"] == f"http://testserver{reverse('faces:photo_file', args=[closer.pk])}"

    assert post(client, f"/api/suggestions/{listed[1]['id']}/", {"answer": "no"}).status_code == 204
    assert post(client, f"/api/suggestions/{listed[0]['id']}/", {"answer": "yes"}).status_code == 204
    assert closer.pk in shown(ada) and further.pk not in shown(ada)
    assert client.get("/api/suggestions/").json() == []
    assert post(client, "/api/suggestions/999999/", {"answer": "yes"}).status_code == 404


def test_offers_in_hidden_albums_or_dismissed_photos_are_never_shown_or_answered(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    hidden = photo_with(at(A, e11=0.52), album=AlbumFactory(hidden=True))
    selfie(ada, A)
    offer = Suggestion.objects.get(member=ada, face__photo=hidden)
    client = client_for(ada)
    assert client.get("/api/suggestions/").json() == []
    assert client.get(reverse("faces:photo_file", args=[hidden.pk])).status_code == 404
    assert post(client, f"/api/suggestions/{offer.pk}/", {"answer": "yes"}).status_code == 404
    assert not Match.objects.filter(member=ada).exists()

    # A photo the member said "Not me" about is never offered either.
    dismissed = photo_with(at(A, e12=0.53))
    photos_rematch([dismissed.pk])
    assert [o["photo"] for o in client.get("/api/suggestions/").json()] == [dismissed.pk]
    Dismissal.objects.create(member=ada, photo=dismissed)
    assert client.get("/api/suggestions/").json() == []
    assert client.get(reverse("faces:photo_file", args=[dismissed.pk])).status_code == 404


def test_band_one_offers_nothing(media_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_SUGGEST_BAND = 1.0
    ada = MemberFactory(username="ada")
    photo_with(at(A, e11=0.52))
    selfie(ada, A)
    assert not Suggestion.objects.exists()
