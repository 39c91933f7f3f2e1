""" "New photos of you": one mail per member after an import run.

Opt-in on the privacy page (`digest_subscribe`), off by default, ended by
`digest_unsubscribe` (the privacy page, the one-click link in every mail,
"Delete all my data"). What a member is owed is read from the database:
their photos (`Photo.objects.matched_to`, so hidden albums, "Not me" and
album access apply) encoded after their `notified_until`. `digests_send`
runs after the import has stored everything (the `import_albums` command
calls it last), so a slow or dead mail server never fails or slows the
import; a mail that could not be sent stays owed and goes with the next
run. Each member's mail is sent inside a transaction that holds their row
and moves `notified_until` on, so two runs never send the same photos twice.

Mails carry counts per album and a link to My photos, never the photos
themselves: a thumbnail in a mail is a copy of the photo outside
Throwback's control (mail servers, forwarding, "Delete all my data" cannot
reach it), and a linked one needs an address that works without logging in.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from dataclasses import dataclass, field
from itertools import groupby

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from faces.models import Album, Photo
from members.models import Member

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "throwback.digest.unsubscribe"


class NoEmailAddress(ValueError):
    """Digests need an email address."""


def digest_subscribe(*, member: Member, email: str, now: dt.datetime | None = None) -> None:
    """Opt in to digests at `email`; photos already there are not mailed.

    Raises NoEmailAddress when `email` is empty or not an address.
    """
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise NoEmailAddress("Enter the email address the mails should go to.") from None
    member.email = email
    if not member.notify_new_photos:
        member.notify_new_photos = True
        member.notified_until = now or timezone.now()
    member.full_clean(exclude=["password"])
    member.save(update_fields=["email", "notify_new_photos", "notified_until"])


def digest_unsubscribe(*, member: Member) -> None:
    """Opt out: no mail from now on (a run in progress re-reads the flag under the row's lock)."""
    Member.objects.filter(pk=member.pk).update(notify_new_photos=False, notified_until=None)
    member.notify_new_photos, member.notified_until = False, None


def unsubscribe_token(member: Member) -> str:
    """The signed token in a mail's unsubscribe link: only Throwback can make one."""
    return signing.dumps({"member": member.pk}, salt=UNSUBSCRIBE_SALT)


def member_from_unsubscribe_token(token: str) -> Member | None:
    """The member a token was made for; None for a forged, damaged or stale token."""
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    member_id = payload.get("member") if isinstance(payload, dict) else None
    if not isinstance(member_id, int):
        return None
    return Member.objects.filter(pk=member_id).first()


def unsubscribe_url(member: Member) -> str:
    return settings.THROWBACK_SITE_URL + reverse("members:unsubscribe", args=[unsubscribe_token(member)])


def owed_photos(member: Member, *, until: dt.datetime) -> list[Photo]:
    """The member's photos encoded after their watermark and up to `until`, newest album first."""
    if not member.notify_new_photos or member.notified_until is None:
        return []
    return list(
        Photo.objects.matched_to(member).filter(encoded_at__gt=member.notified_until, encoded_at__lte=until)
    )


@dataclass(frozen=True)
class AlbumCount:
    title: str
    date: dt.date | None
    photos: int


def album_counts(photos: list[Photo]) -> list[AlbumCount]:
    """Photos per album, in the order given (matched_to: newest album first)."""
    counts = []
    for album, items in groupby(photos, key=lambda photo: photo.album):
        assert isinstance(album, Album)  # noqa: S101 - for the type checker
        counts.append(AlbumCount(album.title, album.date, sum(1 for _ in items)))
    return counts


def digest_message(member: Member, photos: list[Photo]) -> EmailMultiAlternatives:
    """The mail for one member: albums with counts, a link to My photos, an unsubscribe link."""
    albums = album_counts(photos)
    total = len(photos)
    unsubscribe = unsubscribe_url(member)
    context = {
        "member": member,
        "albums": albums,
        "total": total,
        "photos_url": settings.THROWBACK_SITE_URL + reverse("members:photos"),
        "privacy_url": settings.THROWBACK_SITE_URL + reverse("members:consent"),
        "unsubscribe_url": unsubscribe,
    }
    subject = f"{total} new photo{'' if total == 1 else 's'} of you on Throwback"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("members/email/digest.txt", context),
        to=[member.email],
        headers={
            # RFC 2369 and RFC 8058: mail programs offer their own one-click button.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(render_to_string("members/email/digest.html", context), "text/html")
    return message


@dataclass
class DigestSummary:
    considered: int = 0  # opted-in members looked at (0: nobody asked for digests)
    sent: int = 0
    no_address: int = 0  # owed a digest but without an email address: skipped
    waiting: int = 0  # owed a digest the mail server did not take: sent next run
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        line = (
            f"Digests: {self.sent} mailed, {self.no_address} member"
            f"{'' if self.no_address == 1 else 's'} without an email address skipped"
        )
        if self.waiting:
            line += f", {self.waiting} left for the next run ({self.errors[0]})"
        return line


# The server refused one mail (a recipient, the sender, the content; 4xx or
# 5xx): that member waits, the others are tried. Any other OSError (smtplib's
# errors are OSErrors) is the connection or the server itself: all wait.
REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def digests_send(*, now: dt.datetime | None = None) -> DigestSummary:
    """Mail every opted-in member the photos of them encoded since their last digest.

    One mail per member. A member without an email address is skipped (their
    watermark moves on, so each run counts only its own) and counted. When the
    mail server cannot be reached or refuses, that member's photos stay owed;
    after a connection failure the remaining members wait for the next run
    too, so a dead server costs one EMAIL_TIMEOUT, not one per member. Never
    raises for the mail server: the caller's import has already succeeded.
    """
    until = now or timezone.now()
    summary = DigestSummary()
    candidates = list(
        Member.objects.filter(notify_new_photos=True, is_active=True, notified_until__lt=until)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    summary.considered = len(candidates)
    if not candidates:
        return summary
    connection = get_connection(fail_silently=False)
    server_down = False
    try:
        for member_id in candidates:
            if server_down:
                member = Member.objects.get(pk=member_id)
                summary.waiting += 1 if owed_photos(member, until=until) else 0
                continue
            try:
                _send_one(member_id, until=until, connection=connection, summary=summary)
            except REFUSED as exc:
                logger.warning("digest for member %s refused, retried on the next run: %s", member_id, exc)
                summary.waiting += 1
                summary.errors.append(f"mail server refused a mail: {exc}")
            except OSError as exc:
                logger.warning("mail server failed, digests retried on the next run: %s", exc)
                summary.waiting += 1
                summary.errors.append(f"mail server: {exc.__class__.__name__}: {exc}")
                server_down = True
    finally:
        try:
            connection.close()
        except OSError:
            logger.info("closing the mail server connection failed", exc_info=True)
    return summary


def _send_one(
    member_id: int, *, until: dt.datetime, connection: BaseEmailBackend, summary: DigestSummary
) -> None:
    """Send one member's digest and move their watermark, in one transaction.

    The row lock makes a concurrent run wait and then find nothing owed; an
    opt-out committed before the lock is seen here. If sending raises, the
    watermark stays and the photos go with the next run.
    """
    with transaction.atomic():
        member = Member.objects.select_for_update().filter(pk=member_id, notify_new_photos=True).first()
        if member is None:
            return
        photos = owed_photos(member, until=until)
        if photos and not member.email:
            summary.no_address += 1
        elif photos:
            sent = digest_message(member, photos)
            sent.connection = connection
            sent.send(fail_silently=False)
            summary.sent += 1
        Member.objects.filter(pk=member.pk).update(notified_until=until)
