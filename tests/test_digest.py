""" "New photos of you": the digest read back from a real SMTP server on 127.0.0.1.

The server is aiosmtpd (tests/smtp.py) and Throwback talks to it through
Django's SMTP backend, as in production.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from faces.models import ImportRun, Photo
from members.models import Member
from members.notifications import (
    digest_subscribe,
    digests_send,
    member_from_unsubscribe_token,
    unsubscribe_token,
)
from members.services import consent_give, member_face_data_delete, reference_add
from tests.conftest import SITE, make_album_folder, use_mail_server
from tests.factories import AlbumFactory, MemberFactory, matched_photo, reference_with, unit
from tests.smtp import SmtpServer, free_port

pytestmark = pytest.mark.django_db


def import_folder(root: Path) -> str:
    out = io.StringIO()
    call_command(
        "import_albums", folder=str(root), workers=1, no_progress=True, stdout=out, stderr=io.StringIO()
    )
    return out.getvalue()


def opted_in(username: str, email: str, selfie: Path) -> Member:
    member = MemberFactory(username=username)
    reference_add(member=member, data=selfie.read_bytes())
    digest_subscribe(member=member, email=email)
    return member


def link(text: str, path_start: str) -> str:
    """The one URL in a mail's text that starts with SITE + path_start."""
    found = re.findall(re.escape(SITE + path_start) + r"\S*", text)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.slow
def test_an_import_mails_one_digest_per_opted_in_member_and_the_next_run_nothing_new(
    smtp: SmtpServer, tmp_path: Path, examples: Path, media_root: Path
) -> None:
    # Obama is in obama2, two_people (Party) and obama3 (Gala); Biden in biden and two_people.
    ada = opted_in("ada", "ada@example.org", examples / "obama.jpg")
    joe = opted_in("joe", "joe@example.org", examples / "biden.jpg")
    Member.objects.filter(pk=joe.pk).update(email="")  # an admin removed the address
    # A face goes to one member only (one face, one person), so the members who must
    # get nothing are other people: Kit Harington and Rose Leslie, both in kit_with_rose.
    MemberFactory(username="cy", email="cy@example.org")  # never opted in
    cy_selfie = (examples / "kit_harington_john1.jpeg").read_bytes()
    reference_add(member=Member.objects.get(username="cy"), data=cy_selfie)
    dee = opted_in("dee", "dee@example.org", examples / "rose_leslie_img1.jpg")
    member_face_data_delete(member=dee)  # "Delete all my data" ends the opt-in...
    dee.refresh_from_db()
    consent_give(member=dee)  # ...which a new consent and selfie do not bring back
    reference_add(member=dee, data=(examples / "rose_leslie_img1.jpg").read_bytes())
    root = make_album_folder(
        tmp_path / "photos",
        {
            "2024-05-01 Party": [examples / n for n in ("obama2.jpg", "biden.jpg", "two_people.jpg")],
            "Gala": [examples / n for n in ("obama3.jpg", "kit_with_rose.jpg")],
        },
    )

    output = import_folder(root)

    assert "Digests: 1 mailed, 1 member without an email address skipped" in output
    assert Photo.objects.matched_to(dee).count() == 1  # kit_with_rose: matched, but no longer opted in
    assert Photo.objects.matched_to(Member.objects.get(username="cy")).count() == 1  # never opted in
    assert len(smtp.received) == 1
    mail = smtp.received[0]
    assert mail.recipients == ["ada@example.org"]
    assert mail.sender == "throwback@example.org"
    assert mail.message["Subject"] == "3 new photos of you on Throwback"
    text = mail.part("text/plain")
    # Newest album first: Party by its folder name, Gala by obama3.jpg's EXIF day.
    assert "- Party (1 May 2024): 2 photos" in text
    assert "- Gala (10 May 2010): 1 photo\n" in text
    assert f"See them on My photos: {SITE}/\n" in text
    html = mail.part("text/html")
    assert "<strong>Party</strong>" in html and f'href="{SITE}/"' in html
    assert "<img" not in html  # counts and a link, never the photos
    unsubscribe = link(text, "/notifications/unsubscribe/")
    assert (
        str(mail.message["List-Unsubscribe"]).strip() == f"<{unsubscribe}>"
    )  # folded: too long for one line
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # A second run: nothing new, nothing sent, nobody counted.
    output = import_folder(root)
    assert "Digests: 0 mailed, 0 members without an email address skipped" in output
    assert len(smtp.received) == 1

    # The unsubscribe link works without logging in: GET asks, POST stops the mails.
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(urlsplit(unsubscribe).path)
    assert page.status_code == 200
    assert b"Stop these emails" in page.content
    assert Member.objects.get(pk=ada.pk).notify_new_photos is True
    done = browser.post(urlsplit(unsubscribe).path)
    assert done.status_code == 200
    assert b"you will get no more emails about new photos" in done.content
    assert Member.objects.get(pk=ada.pk).notify_new_photos is False

    # New photos of ada after she left: no mail.
    shutil.copyfile(examples / "obama.jpg", root / "Gala" / "obama.jpg")
    output = import_folder(root)
    assert "1 encoded" in output
    assert "Digests: 0 mailed, 0 members without an email address skipped" in output  # joe is still in
    assert len(smtp.received) == 1


def stored_photos(member: Member, count: int, *, title: str = "Trip", encoded: dt.datetime) -> list[Photo]:
    """`count` photos of member in one album, encoded at `encoded`."""
    reference = member.references.first() or reference_with(member, unit(member.pk % 100))
    album = AlbumFactory(title=title)
    photos = [matched_photo(member, reference, album=album) for _ in range(count)]
    Photo.objects.filter(pk__in=[p.pk for p in photos]).update(encoded_at=encoded)
    return photos


def test_a_dead_mail_server_fails_nothing_and_the_mail_goes_with_the_next_run(
    settings, tmp_path: Path, examples: Path, media_root: Path
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nobody listens: connection refused
    use_mail_server(settings, port)
    ada = MemberFactory(username="ada")
    digest_subscribe(member=ada, email="ada@example.org", now=timezone.now() - dt.timedelta(hours=1))
    root = make_album_folder(tmp_path / "photos", {"Party": [examples / "obama2.jpg"]})
    reference_add(member=ada, data=(examples / "obama.jpg").read_bytes())

    output = import_folder(root)

    assert "Imported 1 albums: 1 new" in output
    assert re.search(
        r"Digests: 0 mailed, .*, 1 left for the next run \(mail server: ConnectionRefusedError", output
    )
    run = ImportRun.objects.get()
    assert run.finished is not None and run.error == ""
    assert (run.photos_encoded, run.matches) == (1, 1)

    # The server is back: the next run (with nothing new to import) sends the owed mail, once.
    with SmtpServer(port) as server:
        output = import_folder(root)
        assert "Digests: 1 mailed" in output
        assert [m.message["Subject"] for m in server.received] == ["1 new photo of you on Throwback"]
        assert "- Party (9 September 2009): 1 photo\n" in server.received[0].part("text/plain")
        import_folder(root)
        assert len(server.received) == 1


def test_a_server_that_refuses_the_mail_keeps_it_owed_and_never_sends_twice(smtp: SmtpServer) -> None:
    ada = MemberFactory(username="ada")
    bo = MemberFactory(username="bo")
    start = timezone.now() - dt.timedelta(hours=2)
    digest_subscribe(member=ada, email="ada@example.org", now=start)
    digest_subscribe(member=bo, email="bo@example.org", now=start)
    stored_photos(ada, 2, encoded=start + dt.timedelta(minutes=5))
    stored_photos(bo, 1, title="Gala", encoded=start + dt.timedelta(minutes=5))

    smtp.refuse_data(True)  # 451 to every DATA: each mail refused, the others still tried
    summary = digests_send()
    assert (summary.sent, summary.waiting) == (0, 2)
    assert summary.line().startswith("Digests: 0 mailed, 0 members without an email address skipped, 2 left")
    assert smtp.received == []

    smtp.refuse_data(False)
    assert digests_send().sent == 2
    assert sorted((m.recipients[0], m.message["Subject"]) for m in smtp.received) == [
        ("ada@example.org", "2 new photos of you on Throwback"),
        ("bo@example.org", "1 new photo of you on Throwback"),
    ]
    assert digests_send().sent == 0
    # Photos stored later go in the next mail, and only they.
    stored_photos(ada, 1, title="Later", encoded=timezone.now())
    assert digests_send(now=timezone.now() + dt.timedelta(seconds=1)).sent == 1
    assert "- Later: 1 photo\n" in smtp.received[-1].part("text/plain")
    assert "Trip" not in smtp.received[-1].part("text/plain")


def test_photos_from_before_the_opt_in_hidden_or_dismissed_are_not_mailed(smtp: SmtpServer) -> None:
    ada = MemberFactory(username="ada")
    before = timezone.now() - dt.timedelta(days=1)
    stored_photos(ada, 2, title="Old", encoded=before)
    digest_subscribe(member=ada, email="ada@example.org")
    later = timezone.now() + dt.timedelta(seconds=1)
    [hidden] = stored_photos(ada, 1, title="Hidden album", encoded=later)
    hidden.album.hidden = True
    hidden.album.save()
    [dismissed, kept] = stored_photos(ada, 2, title="Gala", encoded=later)
    from faces.services import photo_dismiss

    assert photo_dismiss(member=ada, photo_id=dismissed.pk)

    digests_send(now=later + dt.timedelta(seconds=1))

    [mail] = smtp.received
    assert mail.message["Subject"] == "1 new photo of you on Throwback"
    assert "- Gala: 1 photo\n" in mail.part("text/plain")


def test_the_privacy_page_opts_in_with_an_address_and_out_at_once(smtp: SmtpServer) -> None:
    ada = MemberFactory(username="ada", email="")
    client = Client()
    client.force_login(ada)
    page = client.get("/consent/")
    assert b"Emails about new photos" in page.content
    assert b'name="notify" id="id_notify"' in page.content and b"checked" not in page.content

    refused = client.post("/privacy/notifications/", {"notify": "on", "email": ""})
    assert refused.status_code == 400
    assert b"Enter the address the mails should go to." in refused.content
    bad = client.post("/privacy/notifications/", {"notify": "on", "email": "not an address"})
    assert bad.status_code == 400
    assert Member.objects.get(pk=ada.pk).notify_new_photos is False

    saved = client.post("/privacy/notifications/", {"notify": "on", "email": "ada@example.org"})
    assert saved.status_code == 302
    ada.refresh_from_db()
    assert (ada.notify_new_photos, ada.email) == (True, "ada@example.org")
    assert ada.notified_until is not None
    assert b"checked" in client.get("/consent/").content

    stored_photos(ada, 1, encoded=timezone.now() + dt.timedelta(seconds=1))
    client.post("/privacy/notifications/", {"email": "ada@example.org"})  # box unticked
    assert Member.objects.get(pk=ada.pk).notify_new_photos is False
    assert digests_send(now=timezone.now() + dt.timedelta(seconds=2)).sent == 0
    assert smtp.received == []


def test_unsubscribe_tokens_cannot_be_forged_and_one_click_post_needs_no_session(settings) -> None:  # type: ignore[no-untyped-def]
    ada = MemberFactory(username="ada")
    digest_subscribe(member=ada, email="ada@example.org")
    token = unsubscribe_token(ada)
    assert member_from_unsubscribe_token(token) == ada
    bo = MemberFactory(username="bo")
    # bo's id in the payload, ada's timestamp and signature after it.
    payload = signing.b64_encode(json.dumps({"member": bo.pk}, separators=(",", ":")).encode()).decode()
    forged = payload + token[token.index(":") :]
    assert forged != token
    assert member_from_unsubscribe_token(forged) is None
    for bad in ("", "abc", token[:-2], f"{bo.pk}"):
        assert member_from_unsubscribe_token(bad) is None
    browser = Client(enforce_csrf_checks=True)
    assert browser.get(f"/notifications/unsubscribe/{token[:-3]}x/").status_code == 404
    # RFC 8058: the mail program POSTs this body, with no cookies and no CSRF token.
    answer = browser.post(
        f"/notifications/unsubscribe/{token}/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert Member.objects.get(pk=ada.pk).notify_new_photos is False
    # A token made with another SECRET_KEY is refused.
    settings.SECRET_KEY = "another-key"
    assert member_from_unsubscribe_token(token) is None
