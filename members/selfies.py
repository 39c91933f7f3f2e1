"""The selfie queue: an upload is stored and answered at once, an encoder analyses it later.

Why: finding and encoding a face costs seconds of CPU and dlib's models
(~190 MB). Done inside the request it held a web worker for every upload, so
a burst of uploads froze every page (issue 15). Now the request checks what is
cheap (consent, size, the image header, the member's limits, the queue bound),
stores the file with a `SelfieUpload` row and answers; an encoder process
(`manage.py run_encoder`, members/encoder.py), which keeps the models loaded,
claims rows in arrival order, runs `services.reference_add` and records the
selfie or the refusal on the row. The status URL and the selfie page read it.

Claims follow the import's pattern (STYLE 16): a conditional UPDATE, a
heartbeat, and a lease after which another encoder takes the upload over.
An upload is analysed at most THROWBACK_ENCODER_ATTEMPTS times; one whose
encoder died every time ends refused (`EncoderStopped`), never stuck.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time
import uuid
import warnings

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Now
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from members import services
from members.models import Member, SelfieUpload

logger = logging.getLogger(__name__)

PENDING = (SelfieUpload.State.QUEUED, SelfieUpload.State.ANALYSING)
WAIT_POLL_S = 0.2
RATE_WINDOW = dt.timedelta(hours=1)
# How long the selfie page lists an upload refused after the request answered.
REFUSALS_SHOWN = dt.timedelta(hours=24)


def selfie_upload_create(*, member: Member, data: bytes) -> SelfieUpload:
    """Store an upload and queue it for the encoder; answers in milliseconds.

    Refuses at once (a ReferenceRejected subclass) what needs no face
    detection: no consent, too many bytes or pixels (from the header), not an
    image format, the member's selfie limit counting uploads still waiting,
    THROWBACK_UPLOADS_PER_HOUR, and a full queue (THROWBACK_SELFIE_QUEUE_MAX).
    With THROWBACK_ENCODE_SELFIES_IN "process" or "inline" the upload is
    analysed before this returns, so the row comes back done or refused.
    """
    if not member.has_consented:
        raise services.ConsentRequired()
    if len(data) > services.upload_limit_bytes():
        raise services.UploadTooLarge(
            f"This file is {len(data) / 1024 / 1024:.1f} MB; the limit is {settings.THROWBACK_UPLOAD_MAX_MB} MB."
        )
    _check_header(data)
    mode = services.encode_selfies_in()
    name = f"uploads/{uuid.uuid4().hex}"
    with transaction.atomic():
        # One member's uploads one at a time, so two at once cannot both pass the limits.
        Member.objects.select_for_update().filter(pk=member.pk).values_list("pk").first()
        _check_member_limits(member)
        if mode == "encoder" and SelfieUpload.objects.filter(state__in=PENDING).count() >= (
            settings.THROWBACK_SELFIE_QUEUE_MAX
        ):
            raise services.AnalysisBusy()
        stored = default_storage.save(name, ContentFile(data))
        try:
            upload = SelfieUpload(member=member, file=stored)
            upload.full_clean()
            upload.save()
        except Exception:
            default_storage.delete(stored)
            raise
    if mode != "encoder":
        claimed = _claim(upload.pk, owner=f"request:{uuid.uuid4().hex[:8]}")
        if claimed is not None:
            return selfie_upload_analyse(upload=claimed, encode_in=mode)
    return upload


def _check_header(data: bytes) -> None:
    """NotAnImage or UploadTooLarge from the image header alone (no pixel is decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        raise services.UploadTooLarge(
            "This image has too many pixels; please upload a smaller photo."
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise services.NotAnImage() from exc
    if width * height > settings.THROWBACK_MAX_IMAGE_PIXELS:
        raise services.UploadTooLarge("This image has too many pixels; please upload a smaller photo.")


def _check_member_limits(member: Member) -> None:
    """The selfie limit (waiting uploads count as selfies), the hourly upload limit and the pending cap."""
    waiting = SelfieUpload.objects.filter(member=member, state__in=PENDING).count()
    if member.references.selfies().count() + waiting >= settings.THROWBACK_MAX_REFERENCES:
        raise services.ReferenceLimitReached()
    per_hour = settings.THROWBACK_UPLOADS_PER_HOUR
    if per_hour:
        now = timezone.now()
        recent = list(
            SelfieUpload.objects.filter(member=member, created__gt=now - RATE_WINDOW)
            .order_by("-created")
            .values_list("created", flat=True)[:per_hour]
        )
        if len(recent) >= per_hour:
            # Free again when the oldest of the last `per_hour` uploads leaves the window.
            retry_after_s = max(1, int((recent[-1] + RATE_WINDOW - now).total_seconds()) + 1)
            minutes = -(-retry_after_s // 60)
            raise services.UploadsThrottled(
                f"You have uploaded {per_hour} selfie{'s' if per_hour != 1 else ''} in the last hour. "
                f"Please wait {minutes} minute{'s' if minutes != 1 else ''} before uploading another.",
                retry_after_s=retry_after_s,
            )
    if waiting >= settings.THROWBACK_SELFIE_PENDING_PER_MEMBER:
        raise services.UploadsPending(
            f"Your {waiting} earlier selfie{'s are' if waiting != 1 else ' is'} still being analysed. "
            "Please wait until they are done before uploading another."
        )


def selfie_upload_claim(*, owner: str) -> SelfieUpload | None:
    """Claim the next queued upload whose member has nothing earlier waiting or being analysed.

    Arrival order per member: only a member's oldest queued upload can be
    claimed, and not while another of theirs is being analysed. Across
    members, the member served least recently goes first (among members never
    served, first come first served), so one member's uploads cannot hold up
    everyone else's. Locked rows are skipped (PostgreSQL's
    SKIP LOCKED), and the claim itself is a conditional UPDATE, so two
    encoders never claim one upload. Returns None when nothing is claimable.
    """
    earlier = SelfieUpload.objects.filter(
        member=OuterRef("member"), state=SelfieUpload.State.QUEUED, pk__lt=OuterRef("pk")
    )
    busy = SelfieUpload.objects.filter(member=OuterRef("member"), state=SelfieUpload.State.ANALYSING)
    last_served = (
        SelfieUpload.objects.filter(member=OuterRef("member"), started__isnull=False)
        .order_by("-started")
        .values("started")[:1]
    )
    with transaction.atomic():
        candidate = (
            SelfieUpload.objects.select_for_update(skip_locked=True)
            .filter(state=SelfieUpload.State.QUEUED)
            .filter(~Exists(earlier), ~Exists(busy))
            .annotate(last_served=Subquery(last_served))
            .order_by(F("last_served").asc(nulls_first=True), "pk")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is None:
            return None
        return _claim(candidate, owner=owner)


def _claim(upload_id: int, *, owner: str) -> SelfieUpload | None:
    # The database's clock (Now()) on every side of the lease, so app hosts' clocks do not matter.
    claimed = SelfieUpload.objects.filter(pk=upload_id, state=SelfieUpload.State.QUEUED).update(
        state=SelfieUpload.State.ANALYSING,
        attempts=F("attempts") + 1,
        claimed_by=owner,
        heartbeat=Now(),
        started=Now(),
    )
    if claimed != 1:
        return None
    return SelfieUpload.objects.get(pk=upload_id)


def selfie_upload_beat(*, upload_id: int, owner: str) -> bool:
    """Renew an encoder's claim; False when the upload is no longer its own (taken over, deleted)."""
    return (
        SelfieUpload.objects.filter(
            pk=upload_id, state=SelfieUpload.State.ANALYSING, claimed_by=owner
        ).update(heartbeat=Now())
        == 1
    )


def selfie_upload_analyse(*, upload: SelfieUpload, encode_in: services.EncodeIn) -> SelfieUpload:
    """Analyse a claimed upload with `services.reference_add` and record how it ended.

    DONE with its `reference`, or REFUSED with the refusal's code and message
    (an unexpected error is refused as `EncodingFailed` and logged). The
    uploaded file is deleted either way. When the claim was lost meanwhile
    (the member deleted their data, or another encoder took it over after
    this one stalled past the lease), the result is not kept.
    """
    try:
        with default_storage.open(upload.file.name, "rb") as file:
            data = file.read()
        member = Member.objects.get(pk=upload.member_id)
    except (FileNotFoundError, Member.DoesNotExist):
        logger.info("selfie upload %s is gone (its member's data was deleted)", upload.pk)
        return _finish(upload, refusal=services.ConsentWithdrawn())
    try:
        # Marks the upload DONE in the transaction that stores the selfie.
        services.reference_add(member=member, data=data, encode_in=encode_in, upload=upload)
    except services.ClaimLost:
        logger.info("selfie upload %s is no longer %s's; nothing was saved", upload.pk, upload.claimed_by)
    except services.ReferenceRejected as exc:
        return _finish(upload, refusal=exc)
    except DatabaseError:
        # Not the photo's fault: the claim lapses and the upload is tried again.
        raise
    except Exception:
        logger.exception("analysing selfie upload %s failed", upload.pk)
        return _finish(upload, refusal=services.EncodingFailed())
    return _current(upload)


def _finish(upload: SelfieUpload, *, refusal: services.ReferenceRejected) -> SelfieUpload:
    """Record a refusal, only while the claim is still this encoder's."""
    same_claim = SelfieUpload.objects.filter(
        pk=upload.pk, state=SelfieUpload.State.ANALYSING, claimed_by=upload.claimed_by
    )
    _refuse(same_claim, refusal, upload.file.name)
    return _current(upload)


def _refuse(rows: QuerySet[SelfieUpload], refusal: services.ReferenceRejected, file_name: str) -> int:
    """End the upload `rows` still matches (0 or 1) as refused and delete its file; how many ended."""
    ended = rows.update(
        state=SelfieUpload.State.REFUSED,
        code=refusal.code,
        message=refusal.message,
        file="",
        finished=Now(),
    )
    if ended:
        _delete_file(file_name)
    return ended


def _current(upload: SelfieUpload) -> SelfieUpload:
    """The upload as stored now; REFUSED when its row is gone (deleted with the member's data)."""
    current = SelfieUpload.objects.filter(pk=upload.pk).first()
    if current is None:  # deleted with the member's data
        gone = services.ConsentWithdrawn()
        upload.state, upload.code, upload.message = SelfieUpload.State.REFUSED, gone.code, gone.message
        return upload
    return current


def _delete_file(name: str) -> None:
    if not name:
        return
    try:
        default_storage.delete(name)
    except OSError:
        logger.exception("could not delete the uploaded selfie file %s", name)


def selfie_uploads_recover() -> int:
    """Hand back uploads whose encoder stopped renewing its claim; returns how many were changed.

    An upload analysed fewer than THROWBACK_ENCODER_ATTEMPTS times is queued
    again (it keeps its place: arrival order); one that has used them all is
    refused with `EncoderStopped`, so it never stays "analysing". Staleness
    is judged by the database's clock, and checked again in each UPDATE, so a
    claim renewed meanwhile is left alone.
    """
    stale = Now() - dt.timedelta(seconds=settings.THROWBACK_ENCODER_LEASE_SECONDS)
    changed = 0
    rows = SelfieUpload.objects.filter(state=SelfieUpload.State.ANALYSING, heartbeat__lt=stale)
    for upload in rows.only("pk", "attempts", "claimed_by", "heartbeat", "file"):
        same_claim = SelfieUpload.objects.filter(
            pk=upload.pk,
            state=SelfieUpload.State.ANALYSING,
            claimed_by=upload.claimed_by,
            heartbeat__lt=stale,
        )
        if upload.attempts < settings.THROWBACK_ENCODER_ATTEMPTS:
            changed += same_claim.update(state=SelfieUpload.State.QUEUED, claimed_by="", heartbeat=None)
            logger.warning(
                "selfie upload %s: its encoder %s stopped; queued again", upload.pk, upload.claimed_by
            )
        else:
            changed += _refuse(same_claim, services.EncoderStopped(), upload.file.name)
            logger.warning(
                "selfie upload %s: its encoder stopped %s times; refused", upload.pk, upload.attempts
            )
    return changed


def selfie_uploads_expire(*, member_id: int | None = None) -> int:
    """Refuse uploads pending for too long (all, or one member's); returns how many.

    Analysed for longer than THROWBACK_SELFIE_ANALYSIS_TIMEOUT_SECONDS: a hung
    analysis, refused `encoding_timeout` (its encoder's late result is then
    dropped: the claim is gone). Queued for longer than
    THROWBACK_SELFIE_QUEUE_MAX_AGE_SECONDS: no encoder is alive or keeps up,
    refused `encoding_failed`. Run by the encoders and by the web side when a
    member's upload is read, so it works with no encoder at all. Times are the
    database's (Now()), so app hosts' clocks do not matter.
    """
    analysis = dt.timedelta(seconds=settings.THROWBACK_SELFIE_ANALYSIS_TIMEOUT_SECONDS)
    queue = dt.timedelta(seconds=settings.THROWBACK_SELFIE_QUEUE_MAX_AGE_SECONDS)
    uploads = SelfieUpload.objects.all()
    if member_id is not None:
        uploads = uploads.filter(member_id=member_id)
    changed = 0
    for state, older, refusal in (
        (SelfieUpload.State.ANALYSING, {"started__lt": Now() - analysis}, services.EncodingTimedOut()),
        (SelfieUpload.State.QUEUED, {"created__lt": Now() - queue}, services.QueueTimedOut()),
    ):
        for pk, name in uploads.filter(state=state, **older).values_list("pk", "file"):
            ended = _refuse(SelfieUpload.objects.filter(pk=pk, state=state, **older), refusal, name)
            if ended:
                logger.warning("selfie upload %s: %s for too long; refused %s", pk, state, refusal.code)
            changed += ended
    return changed


class _Waiters:
    """How many requests of this process wait for an analysis now (THROWBACK_SELFIE_WAITERS at most)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    def enter(self) -> bool:
        with self.lock:
            if self.count >= settings.THROWBACK_SELFIE_WAITERS:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.count -= 1


_waiters = _Waiters()


def selfie_upload_wait(*, upload_id: int, timeout_s: float) -> SelfieUpload | None:
    """The upload once it is done or refused, or as it is after `timeout_s`; None when it is gone.

    For `POST /api/references/` without `Prefer: respond-async`: the request
    waits in a gunicorn thread (gthread), not a whole worker. At most
    THROWBACK_SELFIE_WAITERS requests of a process wait at once, so a burst
    of such uploads leaves threads for the pages: beyond them the upload is
    returned as it is at once (the API then answers 202 with the status URL).
    """
    if not _waiters.enter():
        return SelfieUpload.objects.filter(pk=upload_id).first()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            upload = SelfieUpload.objects.filter(pk=upload_id).first()
            if upload is not None and upload.pending and selfie_uploads_expire(member_id=upload.member_id):
                upload.refresh_from_db()
            if upload is None or not upload.pending or time.monotonic() >= deadline:
                return upload
            time.sleep(WAIT_POLL_S)
    finally:
        _waiters.leave()


def member_upload(*, member: Member, upload_id: int) -> SelfieUpload | None:
    """One of the member's own uploads (None for anyone else's: the views answer 404).

    Pending uploads of the member past their time are refused first, so the
    member sees the end even when no encoder runs.
    """
    selfie_uploads_expire(member_id=member.pk)
    return SelfieUpload.objects.filter(member=member, pk=upload_id).select_related("reference").first()


def member_uploads_refused(*, member: Member) -> list[SelfieUpload]:
    """The member's uploads refused by the analysis in the last REFUSALS_SHOWN, newest first.

    A refusal found after the member left the page reaches them on the selfie page.
    """
    since = timezone.now() - REFUSALS_SHOWN
    return list(
        SelfieUpload.objects.filter(member=member, state=SelfieUpload.State.REFUSED, finished__gte=since)
        .order_by("-finished", "-pk")
        .only("pk", "created", "message", "finished")
    )
