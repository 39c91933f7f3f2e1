"""Privacy guarantees: "not me", "delete all my data", retention, face crops
only for their owner, and no encodings or selfies in the admin."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from faces.models import Dismissal, Match, Photo
from faces.services import photo_dismiss
from members.models import Member, ReferenceFace, SelfieUpload
from members.services import face_data_purge, member_face_data_delete, selfie_files_sweep
from tests.factories import (
    AlbumFactory,
    MemberFactory,
    PhotoFactory,
    face_with,
    jpeg,
    matched_photo,
    reference_with,
    unit,
)

pytestmark = pytest.mark.django_db


def csrf_client(member: Member) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    client.get("/consent/")  # sets the CSRF cookie
    return client


def token(client: Client) -> str:
    return client.cookies["csrftoken"].value


def visible_ids(member: Member) -> list[int]:
    return sorted(Photo.objects.matched_to(member).values_list("pk", flat=True))


# --- "not me" ---------------------------------------------------------------------
def test_not_me_hides_a_photo_from_that_member_only(media_root: Path) -> None:
    ada, bob = MemberFactory(username="ada"), MemberFactory(username="bob")
    ada_ref, bob_ref = reference_with(ada, unit(0)), reference_with(bob, unit(1))
    shared = matched_photo(ada, ada_ref)
    Match.objects.create(member=bob, reference=bob_ref, face=face_with(shared, unit(1)), distance=0.0)
    other = matched_photo(ada, ada_ref)

    assert photo_dismiss(member=ada, photo_id=shared.pk) is True
    assert photo_dismiss(member=ada, photo_id=shared.pk) is True  # twice is harmless
    assert visible_ids(ada) == [other.pk]
    assert visible_ids(bob) == [shared.pk]
    assert list(Dismissal.objects.values_list("member__username", "photo_id")) == [("ada", shared.pk)]


def test_not_me_on_a_photo_the_member_is_not_in_stores_nothing(media_root: Path) -> None:
    ada, bob = MemberFactory(username="ada"), MemberFactory(username="bob")
    bobs = matched_photo(bob, reference_with(bob, unit(1)))
    hidden = matched_photo(ada, reference_with(ada, unit(0)), album=AlbumFactory(hidden=True))
    assert photo_dismiss(member=ada, photo_id=bobs.pk) is False
    assert photo_dismiss(member=ada, photo_id=hidden.pk) is False
    assert photo_dismiss(member=ada, photo_id=999_999) is False
    assert Dismissal.objects.count() == 0


def test_a_dismissed_photo_stays_hidden_after_rematch_and_a_new_selfie(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    dismissed, kept = matched_photo(ada, reference), matched_photo(ada, reference)
    assert photo_dismiss(member=ada, photo_id=dismissed.pk)

    call_command("rematch", stdout=io.StringIO())
    # A dismissed (member, photo) pair is never assigned again: the face stays
    # free for someone else, and the member's view leaves the photo out.
    assert list(Match.objects.filter(member=ada).values_list("face__photo_id", flat=True)) == [kept.pk]
    assert visible_ids(ada) == [kept.pk]

    from faces.services import reference_match

    second = reference_with(ada, unit(0))
    assert reference_match(reference_id=second.pk, vector=second.encoding) == 1
    assert Match.objects.filter(member=ada).count() == 2
    assert visible_ids(ada) == [kept.pk]


def test_the_not_me_button_posts_with_csrf_and_returns_to_the_page(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    photo, kept = matched_photo(ada, reference), matched_photo(ada, reference)
    client = csrf_client(ada)
    url = f"/photos/{photo.pk}/not-me/"

    assert client.get(url).status_code == 405
    assert client.post(url, {"next": "/years/"}).status_code == 403  # no CSRF token
    assert Dismissal.objects.count() == 0

    response = client.post(url, {"next": "/years/"}, HTTP_X_CSRFTOKEN=token(client))
    assert response.status_code == 302
    assert response["Location"] == "/years/"
    assert visible_ids(ada) == [kept.pk]
    page = client.get("/").content.decode()
    assert "Hidden. We will not show you that photo again." in page
    assert f'href="/photos/{photo.pk}/"' not in page and f'href="/photos/{kept.pk}/"' in page
    assert client.get(f"/photos/{photo.pk}/").status_code == 404


def test_the_not_me_button_never_redirects_off_site(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    photo = matched_photo(ada, reference_with(ada, unit(0)))
    client = csrf_client(ada)
    response = client.post(
        f"/photos/{photo.pk}/not-me/", {"next": "https://evil.example/"}, HTTP_X_CSRFTOKEN=token(client)
    )
    assert response["Location"] == "/"


def test_not_me_on_someone_elses_photo_is_404(media_root: Path) -> None:
    bob = MemberFactory(username="bob")
    photo = matched_photo(bob, reference_with(bob, unit(1)))
    client = csrf_client(MemberFactory(username="mallory"))
    assert client.post(f"/photos/{photo.pk}/not-me/", HTTP_X_CSRFTOKEN=token(client)).status_code == 404
    assert client.post(f"/api/photos/{photo.pk}/not-me/", HTTP_X_CSRFTOKEN=token(client)).json() == {
        "error": "No such photo.",
        "code": "not_found",
    }
    assert Dismissal.objects.count() == 0


def test_the_not_me_api_answers_204_and_the_photos_api_leaves_the_photo_out(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    photo, kept = matched_photo(ada, reference), matched_photo(ada, reference)
    client = csrf_client(ada)
    assert client.get(f"/api/photos/{photo.pk}/not-me/").status_code == 405
    response = client.post(f"/api/photos/{photo.pk}/not-me/", HTTP_X_CSRFTOKEN=token(client))
    assert response.status_code == 204
    assert response.content == b""
    body = client.get("/api/photos/").json()
    assert body["count"] == 1
    assert [item["id"] for item in body["results"]] == [kept.pk]


def test_not_me_is_undone_from_the_message_the_api_or_the_privacy_pages_list(media_root: Path) -> None:
    ada, bob = MemberFactory(username="ada"), MemberFactory(username="bob")
    reference = reference_with(ada, unit(0))
    photo = matched_photo(ada, reference, file=default_storage.save("photos/a.jpg", ContentFile(jpeg())))
    kept = matched_photo(ada, reference)
    client = csrf_client(ada)
    csrf = {"HTTP_X_CSRFTOKEN": token(client)}

    # Without JavaScript: the message after "Not me" carries an Undo button.
    client.post(f"/photos/{photo.pk}/not-me/", {"next": "/"}, **csrf)
    page = client.get("/").content.decode()
    assert f'action="/photos/{photo.pk}/restore/"' in page and ">Undo</button>" in page
    assert client.get("/consent/").content.decode().count(f'action="/photos/{photo.pk}/restore/"') == 1
    # The hidden photo's file still loads for its member (the privacy page shows it), not for others.
    assert client.get(f"/photos/{photo.pk}/file/").status_code == 200
    assert client.get(f"/photos/{photo.pk}/").status_code == 404
    bob_client = csrf_client(bob)
    assert bob_client.get(f"/photos/{photo.pk}/file/").status_code == 404
    assert (
        bob_client.post(f"/photos/{photo.pk}/restore/", HTTP_X_CSRFTOKEN=token(bob_client)).status_code == 404
    )

    restored = client.post(f"/photos/{photo.pk}/restore/", {"next": "/consent/#hidden"}, **csrf)
    assert restored.status_code == 302 and restored["Location"] == "/consent/#hidden"
    assert visible_ids(ada) == sorted([photo.pk, kept.pk])
    assert "Photos you hid" not in client.get("/consent/").content.decode()
    assert client.post(f"/photos/{photo.pk}/restore/", **csrf).status_code == 404  # nothing to undo

    # With JavaScript: the API's DELETE undoes its POST.
    api = f"/api/photos/{photo.pk}/not-me/"
    assert client.post(api, **csrf).status_code == 204
    assert visible_ids(ada) == [kept.pk]
    assert client.delete(api, **csrf).status_code == 204
    assert visible_ids(ada) == sorted([photo.pk, kept.pk])
    assert client.delete(api, **csrf).json() == {"error": "No such photo.", "code": "not_found"}
    assert Dismissal.objects.count() == 0


# --- delete all my data -------------------------------------------------------------
def stored_files() -> list[str]:
    try:
        return sorted(default_storage.listdir("references")[1])
    except FileNotFoundError:
        return []


def test_delete_all_my_data_leaves_no_rows_or_files_and_keeps_the_account(
    media_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    ada, bob = MemberFactory(username="ada"), MemberFactory(username="bob")
    first, second = reference_with(ada, unit(0)), reference_with(ada, unit(0))
    photos = [matched_photo(ada, first), matched_photo(ada, second), matched_photo(ada, first)]
    Dismissal.objects.create(member=ada, photo=photos[2])
    bob_ref = reference_with(bob, unit(1))
    bob_photo = matched_photo(bob, bob_ref)
    Dismissal.objects.create(member=bob, photo=matched_photo(bob, bob_ref))
    bob_file = Path(bob_ref.image.name).name
    client = csrf_client(ada)

    matched_photo(ada, first, album=AlbumFactory(hidden=True))  # not seen: not counted
    page = client.get("/privacy/delete/").content.decode()
    assert "your 2 selfies, from the database and from file storage" in page
    assert "your matches in 2 photos" in page  # the photos on My photos; one is "not me"
    assert 'your 1 "Not me" choice;' in page

    # Without ticking the box nothing happens.
    refused = client.post("/privacy/delete/", {}, HTTP_X_CSRFTOKEN=token(client))
    assert refused.status_code == 200
    assert "Tick the first box to confirm." in refused.content.decode()
    assert ReferenceFace.objects.filter(member=ada).count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/privacy/delete/", {"confirm": "on"}, HTTP_X_CSRFTOKEN=token(client))
    assert response.status_code == 302
    assert response["Location"] == "/privacy/deleted/"
    assert response["Clear-Site-Data"] == '"cache"'  # the browser drops its cached photo files
    assert ReferenceFace.objects.filter(member=ada).count() == 0
    assert Match.objects.filter(member=ada).count() == 0
    assert Dismissal.objects.filter(member=ada).count() == 0
    ada.refresh_from_db()
    assert ada.consent_given_at is None
    assert stored_files() == [bob_file]  # only Bob's selfie is left in storage
    # Bob is untouched; the photos themselves stay.
    assert visible_ids(bob) == [bob_photo.pk]
    assert Dismissal.objects.filter(member=bob).count() == 1
    assert Photo.objects.count() == 6

    done = client.get("/privacy/deleted/").content.decode()
    assert "your consent are gone." in done
    assert "Agree again and upload a selfie" in done
    assert client.get("/references/")["Location"] == "/consent/"  # consent is asked again


def test_delete_all_my_data_with_the_account_logs_out_and_deletes_the_member(
    media_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    photo = matched_photo(ada, reference)
    Dismissal.objects.create(member=ada, photo=matched_photo(ada, reference))
    client = csrf_client(ada)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/privacy/delete/", {"confirm": "on", "delete_account": "on"}, HTTP_X_CSRFTOKEN=token(client)
        )
    assert response["Location"] == "/privacy/deleted/?account=1"
    assert response["Clear-Site-Data"] == '"cache"'
    assert not Member.objects.filter(username="ada").exists()
    assert (ReferenceFace.objects.count(), Match.objects.count(), Dismissal.objects.count()) == (0, 0, 0)
    assert stored_files() == []
    assert Photo.objects.filter(pk=photo.pk).exists()
    done = client.get("/privacy/deleted/?account=1").content.decode()
    assert "and so is your Throwback account." in done
    assert client.get("/references/")["Location"] == "/accounts/login/?next=/references/"


def test_member_face_data_delete_counts_and_is_idempotent(
    media_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    matched_photo(ada, reference)
    Dismissal.objects.create(member=ada, photo=matched_photo(ada, reference))
    with django_capture_on_commit_callbacks(execute=True):
        first = member_face_data_delete(member=ada)
        second = member_face_data_delete(member=ada)
    assert (first.references, first.matches, first.dismissals) == (1, 2, 1)
    assert (second.references, second.matches, second.dismissals) == (0, 0, 0)


def test_a_failed_file_delete_does_not_fail_the_deletion(
    media_root: Path, django_capture_on_commit_callbacks, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    name = reference.image.name

    def broken(name: str) -> None:
        raise OSError("storage is down")

    monkeypatch.setattr(default_storage, "delete", broken)
    with django_capture_on_commit_callbacks(execute=True):
        member_face_data_delete(member=ada)
    assert ReferenceFace.objects.count() == 0
    assert f"could not delete selfie file {name}; purge_inactive will retry" in caplog.text
    monkeypatch.undo()
    assert default_storage.exists(name)  # left for selfie_files_sweep


# --- retention ------------------------------------------------------------------------
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def member_seen(username: str, *, last_login: dt.datetime | None, joined: dt.datetime) -> Member:
    member = MemberFactory(username=username)
    Member.objects.filter(pk=member.pk).update(last_login=last_login, date_joined=joined)
    member.refresh_from_db()
    # One person each (distinct encodings), so no one takes over another's photos.
    reference_with(member, unit(Member.objects.count()))
    return member


def test_purge_deletes_face_data_only_of_members_inactive_longer_than_the_retention(
    media_root: Path, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_RETENTION_DAYS = 365
    long_ago = NOW - 1000 * DAY
    gone = member_seen("gone", last_login=NOW - 365 * DAY - dt.timedelta(seconds=1), joined=long_ago)
    edge = member_seen("edge", last_login=NOW - 365 * DAY, joined=long_ago)  # exactly the limit: kept
    member_seen("never_old", last_login=None, joined=NOW - 366 * DAY)
    never_new = member_seen("never_new", last_login=None, joined=NOW - 364 * DAY)
    recent = member_seen("recent", last_login=NOW - DAY, joined=long_ago)
    staff = member_seen("staff", last_login=NOW - 400 * DAY, joined=long_ago)
    Member.objects.filter(pk=staff.pk).update(is_staff=True)
    matched_photo(gone, gone.references.get())
    Dismissal.objects.create(member=gone, photo=matched_photo(gone, gone.references.get()))
    # Inactive without any face data or consent: nothing to purge, not counted.
    idle = MemberFactory(username="idle", consent_given_at=None)
    Member.objects.filter(pk=idle.pk).update(last_login=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        summary = face_data_purge(now=NOW)
    assert summary.line() == (
        "Purged the face data of 3 inactive members (3 selfies, 2 matches, 1 dismissals); "
        "removed 0 left-over selfie files"
    )
    purged = sorted(Member.objects.filter(consent_given_at__isnull=True).values_list("username", flat=True))
    assert purged == ["gone", "idle", "never_old", "staff"]
    with_selfies = sorted(ReferenceFace.objects.values_list("member__username", flat=True))
    assert with_selfies == ["edge", "never_new", "recent"]
    assert Match.objects.count() == 0 and Dismissal.objects.count() == 0
    # Accounts stay; only face data goes.
    assert Member.objects.count() == 7
    assert len(stored_files()) == 3
    for member in (edge, never_new, recent):
        assert member.references.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        again = face_data_purge(now=NOW)
    assert again.line() == (
        "Purged the face data of 0 inactive members (0 selfies, 0 matches, 0 dismissals); "
        "removed 0 left-over selfie files"
    )


def test_the_retention_is_a_setting(media_root: Path, settings, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_RETENTION_DAYS = 30
    member_seen("month", last_login=NOW - 31 * DAY, joined=NOW - 100 * DAY)
    member_seen("weeks", last_login=NOW - 29 * DAY, joined=NOW - 100 * DAY)
    with django_capture_on_commit_callbacks(execute=True):
        assert face_data_purge(now=NOW).members == 1
    assert list(ReferenceFace.objects.values_list("member__username", flat=True)) == ["weeks"]


def age(name: str, seconds: float) -> None:
    path = Path(default_storage.path(name))
    stamp = timezone.now().timestamp() - seconds
    os.utime(path, (stamp, stamp))


def test_left_over_selfie_files_are_swept_after_the_grace_period(media_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_SELFIE_FILE_GRACE_HOURS = 24
    kept = reference_with(MemberFactory(username="ada"), unit(0))
    age(kept.image.name, 48 * 3600)  # old, but still a reference's file
    old = default_storage.save("references/old-orphan.jpg", ContentFile(jpeg()))
    young = default_storage.save("references/young-orphan.jpg", ContentFile(jpeg()))
    age(old, 24 * 3600 + 60)
    age(young, 24 * 3600 - 60)  # maybe an upload whose row is not committed yet
    unrelated = default_storage.save("photos/ab/not-a-selfie.jpg", ContentFile(jpeg()))
    age(unrelated, 100 * 24 * 3600)

    assert selfie_files_sweep(now=timezone.now()) == 1
    assert stored_files() == sorted([Path(kept.image.name).name, "young-orphan.jpg"])
    assert default_storage.exists(unrelated)
    assert selfie_files_sweep(now=timezone.now()) == 0


def test_left_over_upload_files_are_swept_but_not_those_of_waiting_uploads(
    media_root: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_SELFIE_FILE_GRACE_HOURS = 24
    waiting = default_storage.save("uploads/waiting", ContentFile(jpeg()))
    SelfieUpload.objects.create(member=MemberFactory(username="ada"), file=waiting)
    orphan = default_storage.save("uploads/orphan", ContentFile(jpeg()))
    for name in (waiting, orphan):
        age(name, 48 * 3600)

    assert selfie_files_sweep(now=timezone.now()) == 1
    assert default_storage.exists(waiting)
    assert not default_storage.exists(orphan)


def test_purge_inactive_command_prints_one_summary_line(
    media_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    member_seen("gone", last_login=now - 400 * DAY, joined=now - 500 * DAY)
    member_seen("here", last_login=now - 10 * DAY, joined=now - 500 * DAY)
    orphan = default_storage.save("references/orphan.jpg", ContentFile(jpeg()))
    age(orphan, 25 * 3600)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_inactive", stdout=out)
    assert out.getvalue() == (
        "Purged the face data of 1 inactive members (1 selfies, 0 matches, 0 dismissals); "
        "removed 1 left-over selfie files\n"
    )
    out = io.StringIO()
    call_command("purge_inactive", stdout=out)
    assert out.getvalue().startswith("Purged the face data of 0 inactive members (0 selfies")
    assert out.getvalue().endswith("removed 0 left-over selfie files\n")


# --- the face crop -------------------------------------------------------------------
def selfie_with_red_face() -> bytes:
    """400×300 white with a red 100×100 'face' at left 100, top 50."""
    image = Image.new("RGB", (400, 300), "white")
    image.paste((255, 0, 0), (100, 50, 200, 150))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_the_face_crop_shows_the_detected_face_to_its_owner_only(
    media_root: Path, admin_client: Client
) -> None:
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0), image=selfie_with_red_face(), box=(50, 200, 150, 100))
    url = f"/references/{reference.pk}/face.jpg"
    client = Client()
    client.force_login(ada)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"
    with Image.open(io.BytesIO(response.content)) as crop:
        # 100 px face + 35 % margin on each side = 170 px, below the 256 px cap.
        assert crop.size == (170, 170)
        red, green, blue = crop.getpixel((85, 85))
        assert red > 200 and green < 60 and blue < 60
        assert min(crop.getpixel((3, 3))) > 200  # the white margin

    other = Client()
    other.force_login(MemberFactory(username="mallory"))
    assert other.get(url).status_code == 404
    assert admin_client.get(url).status_code == 404  # staff too: only the owner
    assert Client().get(url)["Location"] == f"/accounts/login/?next={url}"

    default_storage.delete(reference.image.name)
    assert client.get(url).status_code == 404


def test_the_face_crop_is_clamped_to_the_image_and_capped_in_size(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    image = Image.new("RGB", (1000, 800), "blue")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    # A face in the top-left corner, 400 px: the crop would pass the edges.
    reference = reference_with(ada, unit(0), image=buffer.getvalue(), box=(0, 400, 400, 0))
    client = Client()
    client.force_login(ada)
    with Image.open(io.BytesIO(client.get(f"/references/{reference.pk}/face.jpg").content)) as crop:
        assert crop.size == (256, 256)


def test_the_selfie_page_shows_each_face_crop(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    first, second = reference_with(ada, unit(0)), reference_with(ada, unit(0))
    client = Client()
    client.force_login(ada)
    page = client.get("/references/").content.decode()
    for reference in (first, second):
        assert (
            f'<img src="/references/{reference.pk}/face.jpg" alt="The face found in your selfie of ' in page
        )
    assert reference.image.name not in page


# --- the admin never shows encodings or selfies ----------------------------------------
MARKER = 0.123456789  # stored as float32 0.12345679: look for its first digits


def test_no_admin_page_shows_an_encoding_or_a_selfie(media_root: Path, admin_client: Client) -> None:
    ada = MemberFactory(username="ada")
    vector = np.full(128, MARKER)
    reference = reference_with(ada, vector)
    photo = matched_photo(ada, reference)
    face = photo.faces.get()
    pages = [
        "/admin/",
        "/admin/members/member/",
        f"/admin/members/member/{ada.pk}/change/",
        "/admin/members/referenceface/",
        f"/admin/members/referenceface/{reference.pk}/change/",
        f"/admin/members/referenceface/{reference.pk}/delete/",
        "/admin/faces/photo/",
        f"/admin/faces/photo/{photo.pk}/change/",
        "/admin/faces/album/",
        f"/admin/faces/album/{photo.album_id}/change/",
        "/admin/faces/importrun/",
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert "0.1234" not in text and "1234567" not in text, url
        assert "field0" not in text and "field127" not in text, url
        assert reference.image.name not in text and Path(reference.image.name).stem not in text, url
        assert "/face.jpg" not in text, url
    # The reference list shows the match count, the tool to spot a stranger's selfie.
    listing = admin_client.get("/admin/members/referenceface/").content.decode()
    assert '<td class="field-match_count">1</td>' in listing
    # Encodings and matches have no admin pages at all.
    assert admin_client.get("/admin/faces/faceencoding/").status_code == 404
    assert admin_client.get(f"/admin/faces/faceencoding/{face.pk}/change/").status_code == 404
    assert admin_client.get("/admin/faces/match/").status_code == 404


def test_deleting_a_selfie_in_the_admin_deletes_its_file(
    media_root: Path, admin_client: Client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    ada = MemberFactory(username="ada")
    gone, kept = reference_with(ada, unit(0)), reference_with(ada, unit(0))
    matched_photo(ada, gone)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/members/referenceface/{gone.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(ReferenceFace.objects.values_list("pk", flat=True)) == [kept.pk]
    # The photo is assigned again: the other selfie (the same face) matches it now.
    assert list(Match.objects.values_list("reference_id", flat=True)) == [kept.pk]
    assert stored_files() == [Path(kept.image.name).name]


def test_photos_of_hidden_albums_and_unmatched_photos_are_never_served(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    visible = matched_photo(ada, reference, file=default_storage.save("photos/v.jpg", ContentFile(jpeg())))
    hidden = matched_photo(
        ada,
        reference,
        album=AlbumFactory(hidden=True),
        file=default_storage.save("photos/h.jpg", ContentFile(jpeg())),
    )
    stranger = PhotoFactory(file=default_storage.save("photos/s.jpg", ContentFile(jpeg())))
    client = Client()
    client.force_login(ada)
    for suffix in ("", "file/", "download/"):
        assert client.get(f"/photos/{visible.pk}/{suffix}").status_code == 200, suffix
        assert client.get(f"/photos/{hidden.pk}/{suffix}").status_code == 404, suffix
        assert client.get(f"/photos/{stranger.pk}/{suffix}").status_code == 404, suffix
    assert client.get(f"/albums/{visible.album_id}/download/").status_code == 200
    assert client.get(f"/albums/{hidden.album_id}/download/").status_code == 404
    assert client.get(f"/albums/{stranger.album_id}/download/").status_code == 404
