"""Consent, reference faces and Thalia logins: the member-side state changes.

Upload problems are raised as ReferenceRejected subclasses carrying a stable
`code` and the message a member sees; views map nothing themselves.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from faces import engine, isolated, limits
from faces.matching import match_lock
from faces.services import engine_options, reference_match
from faces.services.assignment import photos_of_member, photos_rematch
from faces.services.learning import member_learn
from members.lookalikes import lookalikes_store
from members.models import Member, ReferenceFace, SelfieUpload
from members.selfie_quality import selfie_warnings

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

SELFIE_STORED_MAX_SIDE_PX = 1024
# What My photos says after an upload, with or without JavaScript.
SELFIE_ADDED = "Selfie added. Your photos are below."
# Where a selfie's faces are found (THROWBACK_ENCODE_SELFIES_IN; see _selfie_faces).
EncodeIn = Literal["encoder", "process", "inline"]


def encode_selfies_in() -> EncodeIn:
    """THROWBACK_ENCODE_SELFIES_IN, typed (env_choice in settings allows only these three)."""
    return cast(EncodeIn, settings.THROWBACK_ENCODE_SELFIES_IN)


class ReferenceRejected(Exception):
    code = "invalid"
    message = "This selfie cannot be used."
    http_status = 400  # the member's file or account is the problem

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class ConsentRequired(ReferenceRejected):
    code = "consent"
    message = "Please agree to face processing before uploading a selfie."


class ConsentWithdrawn(ConsentRequired):
    message = (
        "Your face data was deleted while this selfie was being analysed, so it was not saved. "
        "Please agree to face processing again to upload a selfie."
    )
    http_status = 409


class ReferenceLimitReached(ReferenceRejected):
    code = "limit"
    message = "You already have the maximum number of selfies; delete one first."


class UploadTooLarge(ReferenceRejected):
    code = "too_large"
    message = "This file is too large."


class NotAnImage(ReferenceRejected):
    code = "not_image"
    message = "This file is not an image we can read. Please upload a JPEG or PNG photo."


class NoFaceFound(ReferenceRejected):
    code = "no_face"
    message = (
        "We could not find a face in this photo. Use a well-lit photo of your face, looking at the camera."
    )


class SeveralFacesFound(ReferenceRejected):
    code = "many_faces"
    message = "This photo shows more than one face. Use a photo with only you in it."


class EncodingFailed(ReferenceRejected):
    """The encoding process crashed or was killed (out of memory): our failure, not the photo's."""

    code = "encoding_failed"
    message = "We could not analyse this photo just now, so nothing was saved. Please try again in a moment."
    http_status = 503


class EncodingTimedOut(EncodingFailed):
    code = "encoding_timeout"
    message = "Analysing this photo took too long, so nothing was saved. Please try again in a moment."


class EncoderStopped(EncodingFailed):
    """The encoder analysing this upload died, every time it was tried (members/selfies.py)."""

    message = (
        "Our analysis of this photo stopped before it finished, so nothing was saved. "
        "Please try again in a moment, or try another photo."
    )


class QueueTimedOut(EncodingFailed):
    """Queued for longer than THROWBACK_SELFIE_QUEUE_MAX_AGE_SECONDS: no encoder got to it."""

    message = "We could not get to this photo in time, so nothing was saved. Please try again in a moment."


class UploadsThrottled(ReferenceRejected):
    """THROWBACK_UPLOADS_PER_HOUR reached: one member cannot keep the encoder to themselves."""

    code = "rate_limited"
    message = "You have uploaded many selfies in the last hour. Please wait a while before uploading another."
    http_status = 429

    def __init__(self, message: str | None = None, *, retry_after_s: int = 3600) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UploadsPending(ReferenceRejected):
    """THROWBACK_SELFIE_PENDING_PER_MEMBER of the member's uploads wait already: their turn first."""

    code = "pending"
    message = "Your earlier selfies are still being analysed. Please wait until they are done."
    http_status = 429
    retry_after_s = 30


class AnalysisBusy(ReferenceRejected):
    """THROWBACK_SELFIE_QUEUE_MAX uploads are waiting already: ours to fix, not the member's."""

    code = "busy"
    message = "Many members are uploading selfies right now. Please try again in a minute."
    http_status = 503
    retry_after_s = 60


class ClaimLost(Exception):
    """The upload being analysed is no longer this encoder's (deleted, timed out or taken over).

    Raised by reference_add before it stores anything, so the selfie is not saved.
    """


def refusal_http_status(code: str) -> int:
    """The HTTP status of a refusal recorded by code (members.selfies keeps only the code).

    After the upload was accepted, a consent refusal means it was withdrawn
    meanwhile (409), and an encoding failure is ours (503).
    """
    return {
        ConsentRequired.code: ConsentWithdrawn.http_status,
        EncodingFailed.code: EncodingFailed.http_status,
        EncodingTimedOut.code: EncodingTimedOut.http_status,
    }.get(code, ReferenceRejected.http_status)


def upload_limit_bytes() -> int:
    """THROWBACK_UPLOAD_MAX_MB in bytes: the one place the selfie size limit is computed."""
    limit: int = settings.THROWBACK_UPLOAD_MAX_MB * 1024 * 1024
    return limit


def consent_give(*, member: Member) -> None:
    """Record consent to face processing, once, with its time."""
    if member.consent_given_at is None:
        member.consent_given_at = timezone.now()
        member.save(update_fields=["consent_given_at"])


def reference_add(
    *, member: Member, data: bytes, encode_in: EncodeIn | None = None, upload: SelfieUpload | None = None
) -> ReferenceFace:
    """Store a selfie with one face and match it against every photo face.

    A photo in which no face is found is tried again harder (more upsampling,
    then the CNN detector); of several faces, one that clearly dominates
    (engine.dominant_face) is taken, and the face crop shows which. A small,
    dark, blurred or turned face is stored with `warnings` (members.selfie_quality).
    The reference's limit comes from faces.limits; after it is matched, the
    member's mean and learned references are brought up to date.
    The stored image is a re-encoded, upright JPEG (no EXIF, so no location).
    `encode_in` ("process" or "inline") overrides THROWBACK_ENCODE_SELFIES_IN:
    the encoder process passes "inline". Raises a ReferenceRejected subclass
    naming the problem.

    `upload` is the claimed SelfieUpload being analysed: it is marked DONE
    with this selfie in the same transaction that stores the selfie, and only
    while it is still ANALYSING under the same claim (else ClaimLost and
    nothing is stored), so an upload is never saved twice, and "delete my
    data" (which deletes the upload) can never be followed by its selfie.
    """
    if not member.has_consented:
        raise ConsentRequired()
    if len(data) > upload_limit_bytes():
        raise UploadTooLarge(
            f"This file is {len(data) / 1024 / 1024:.1f} MB; the limit is {settings.THROWBACK_UPLOAD_MAX_MB} MB."
        )
    if member.references.selfies().count() >= settings.THROWBACK_MAX_REFERENCES:
        raise ReferenceLimitReached()
    options = engine_options(selfie=True)
    try:
        # Decoded at no more than about twice the stored size: the rest would be thrown away.
        image = engine.load_image(data, max_pixels=options.max_pixels, max_side_px=SELFIE_STORED_MAX_SIDE_PX)
    except engine.ImageTooLarge as exc:
        raise UploadTooLarge("This image has too many pixels; please upload a smaller photo.") from exc
    except engine.NotAnImage as exc:
        raise NotAnImage() from exc
    stored, _ = engine.downscale(image, SELFIE_STORED_MAX_SIDE_PX)
    where = encode_in or encode_selfies_in()
    faces = _selfie_faces(stored, options, where)
    if not faces:
        # One image, so trying harder costs little: more upsampling, then the CNN detector.
        faces = _selfie_faces(stored, replace(options, upsample=options.upsample + 1), where)
    if not faces and options.detector != "cnn":
        faces = _selfie_faces(stored, replace(options, detector="cnn"), where)
    if not faces:
        raise NoFaceFound()
    face = faces[0] if len(faces) == 1 else engine.dominant_face(faces, stored.width, stored.height)
    if face is None:
        raise SeveralFacesFound(f"This photo shows {len(faces)} faces. Use a photo with only you in it.")
    warnings = selfie_warnings(stored, (face.top, face.right, face.bottom, face.left), turn=face.turn)
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=90)

    with transaction.atomic():
        # An import storing a photo at the same moment would otherwise match
        # its faces without this reference while this reference misses them.
        # Taken before the member row: an import holding it locks member rows
        # too (its matches' foreign keys), so the other order could deadlock.
        match_lock()
        # Lock the member row so two parallel uploads cannot pass the limit,
        # and read the consent again: "delete my data" (or the account) may
        # have run while this selfie was being analysed. It takes the match
        # lock too, so it either committed before this point or waits for
        # this upload and then deletes its reference.
        locked = Member.objects.select_for_update().only("consent_given_at").filter(pk=member.pk).first()
        claimed = None
        if upload is not None:
            claimed = (
                SelfieUpload.objects.select_for_update()
                .filter(pk=upload.pk, state=SelfieUpload.State.ANALYSING, claimed_by=upload.claimed_by)
                .only("pk", "file")
                .first()
            )
            if claimed is None:
                raise ClaimLost()
        if locked is None or not locked.has_consented:
            raise ConsentWithdrawn()
        if member.references.selfies().count() >= settings.THROWBACK_MAX_REFERENCES:
            raise ReferenceLimitReached()
        reference = ReferenceFace(
            member=member,
            top=face.top,
            right=face.right,
            bottom=face.bottom,
            left=face.left,
            # This selfie's member has one selfie more now (faces/limits.py).
            match_limit=limits.limit_for(face.encoding, selfies=member.references.selfies().count() + 1),
            warnings=warnings,
        )
        reference.set_encoding(face.encoding)
        reference.image.save(f"{uuid.uuid4().hex}.jpg", ContentFile(buffer.getvalue()), save=False)
        try:
            reference.full_clean(exclude=["image"])
            reference.save()
            reference_match(reference_id=reference.pk, vector=face.encoding)
            lookalikes_store(reference=reference, vector=face.encoding)
        except Exception:
            default_storage.delete(reference.image.name)
            raise
        if claimed is not None:
            SelfieUpload.objects.filter(pk=claimed.pk).update(
                state=SelfieUpload.State.DONE, reference=reference, file="", finished=Now()
            )
            upload_file = claimed.file.name
            transaction.on_commit(lambda: _storage_delete([upload_file]))
    # The mean of two or more selfies and the learned references follow the new
    # selfie. The selfie is saved already, so a failure here is logged, not a refusal.
    try:
        member_learn(member_id=member.pk)
    except Exception:
        logger.exception("member %s: learning after a new selfie failed; the selfie is saved", member.pk)
    return reference


def _selfie_faces(
    image: Image.Image, options: engine.EngineOptions, where: EncodeIn
) -> list[engine.DetectedFace]:
    """The faces in a selfie, found in this process or (`where` "process") in a child.

    "process" encodes in a child process so this web worker never loads
    dlib's models; see faces/isolated.py. Raises EncodingFailed or
    EncodingTimedOut when the child gives no answer. "inline" and "encoder"
    encode here: "encoder" means this is the encoder process (members/selfies.py).
    """
    if where != "process":
        return engine.find_faces(image, options)
    try:
        return isolated.find_faces(image, options, timeout_s=settings.THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS)
    except isolated.EncoderFailed as exc:
        if exc.timed_out:
            raise EncodingTimedOut() from exc
        raise EncodingFailed() from exc


def reference_delete(*, member: Member, reference_id: int) -> bool:
    """Delete one of the member's own selfies, its matches and its image.

    The photos the member was matched in are assigned again (a face may go to
    another member now), and the member's mean and learned references follow.
    Returns False when the member has no such selfie (someone else's).
    """
    with transaction.atomic():
        # Taken first, as in reference_add: match writers wait for the removal.
        match_lock()
        reference = ReferenceFace.objects.selfies().filter(member=member, pk=reference_id).first()
        if reference is None:
            return False
        name = reference.image.name
        photos = photos_of_member(member.pk)
        reference.delete()  # matches go with it (on_delete=CASCADE)
        # Faces this selfie won may belong to someone else now.
        photos_rematch(photos)
        transaction.on_commit(lambda: _storage_delete([name]))
    member_learn(member_id=member.pk)
    return True


def member_delete(*, member: Member) -> None:
    """Delete a member with their references and matches, and their selfie files.

    The files go only once the deletion is committed, so a rollback keeps them.
    """
    with transaction.atomic():
        match_lock()  # as in reference_delete
        names = _member_files(member)
        photos = photos_of_member(member.pk)
        member.delete()  # references and matches go with it (on_delete=CASCADE)
        photos_rematch(photos)
        transaction.on_commit(lambda: _storage_delete(names))


def _member_files(member: Member) -> list[str]:
    """The stored files of a member's selfies and of their uploads still waiting for analysis."""
    names = list(member.references.values_list("image", flat=True))
    names += SelfieUpload.objects.filter(member=member).values_list("file", flat=True)
    return [name for name in names if name]


def _storage_delete(names: list[str]) -> None:
    """Delete stored selfie files after a commit.

    A storage failure is logged, not raised: the rows are gone already, and
    `purge_inactive` sweeps selfie files that no reference points to.
    """
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            logger.exception("could not delete selfie file %s; purge_inactive will retry", name)


# --- privacy: "delete all my data" and retention ---------------------------------
@dataclass(frozen=True)
class FaceDataDeleted:
    """What member_face_data_delete removed."""

    references: int
    matches: int
    dismissals: int


def member_face_data_delete(*, member: Member) -> FaceDataDeleted:
    """Delete all of a member's face data; the account itself stays.

    Gone: the selfies (rows, encodings and, after the commit, their image
    files), the uploads and their files, the references derived from them (mean, learned, confirmed), every
    match, every "Is this you?" offer and answer, every "not me" dismissal,
    the consent, so a new upload asks for consent again, and the "new photos
    of you" opt-in. Running it twice is harmless. `references` counts the
    selfies.
    """
    from faces.models import Dismissal, Match, Suggestion

    with transaction.atomic():
        match_lock()  # as in reference_delete
        names = _member_files(member)
        photos = photos_of_member(member.pk)
        # Uploads not analysed yet go too (an encoder at work on one finds it gone).
        SelfieUpload.objects.filter(member=member).delete()
        # Matches first, so each count below is of its own table only.
        matches, _ = Match.objects.filter(member=member).delete()
        references = member.references.selfies().count()
        # Selfies, their mean, learned and confirmed references.
        ReferenceFace.objects.filter(member=member).delete()
        dismissals, _ = Dismissal.objects.filter(member=member).delete()
        Suggestion.objects.filter(member=member).delete()
        # Faces this member was given may belong to someone else.
        photos_rematch(photos)
        # The "new photos of you" opt-in goes too (the address stays: password resets use it).
        Member.objects.filter(pk=member.pk).update(
            consent_given_at=None, notify_new_photos=False, notified_until=None
        )
        member.consent_given_at, member.notify_new_photos, member.notified_until = None, False, None
        transaction.on_commit(lambda: _storage_delete(names))
    return FaceDataDeleted(references=references, matches=matches, dismissals=dismissals)


def last_active(member: Member) -> dt.datetime:
    """When the member was last seen: their last login, else when they joined."""
    return member.last_login or member.date_joined


@dataclass
class PurgeSummary:
    members: int = 0
    references: int = 0
    matches: int = 0
    dismissals: int = 0
    files: int = 0

    def line(self) -> str:
        return (
            f"Purged the face data of {self.members} inactive members ({self.references} selfies, "
            f"{self.matches} matches, {self.dismissals} dismissals); "
            f"removed {self.files} left-over selfie files"
        )


def inactive_members(*, now: dt.datetime) -> QuerySet[Member]:
    """Members with face data or consent who have not been seen for THROWBACK_RETENTION_DAYS.

    "Seen" is the last login, or the date of joining for members who never
    logged in. Exactly THROWBACK_RETENTION_DAYS ago still counts as active.
    """
    cutoff = now - dt.timedelta(days=settings.THROWBACK_RETENTION_DAYS)
    has_face_data = (
        Q(consent_given_at__isnull=False)
        | Q(references__isnull=False)
        | Q(matches__isnull=False)
        | Q(dismissals__isnull=False)
    )
    return (
        Member.objects.annotate(seen=Coalesce("last_login", "date_joined"))
        .filter(has_face_data, seen__lt=cutoff)
        .distinct()
        .order_by("pk")
    )


def face_data_purge(*, now: dt.datetime) -> PurgeSummary:
    """Retention: delete the face data of inactive members and stray selfie files.

    Idempotent and safe to run from cron: a second run finds nothing to do.
    Each member's data goes in its own transaction, so a failure part-way
    keeps what was purged so far.
    """
    summary = PurgeSummary()
    for member in inactive_members(now=now):
        deleted = member_face_data_delete(member=member)
        summary.members += 1
        summary.references += deleted.references
        summary.matches += deleted.matches
        summary.dismissals += deleted.dismissals
    summary.files = selfie_files_sweep(now=now)
    return summary


SELFIE_FOLDER = "references"
UPLOAD_FOLDER = "uploads"  # SelfieUpload files until their analysis ends (members/selfies.py)


def selfie_files_sweep(*, now: dt.datetime) -> int:
    """Delete selfie and upload files that no row points to, once older than the grace period.

    They are left behind when deleting a file failed after its row was
    deleted or its analysis ended (storage down). Files younger than
    THROWBACK_SELFIE_FILE_GRACE_HOURS are kept: an upload stores its file
    just before its row is committed. Returns how many files were deleted.
    """
    cutoff = now - dt.timedelta(hours=settings.THROWBACK_SELFIE_FILE_GRACE_HOURS)
    deleted = 0
    for folder, known in (
        (SELFIE_FOLDER, set(ReferenceFace.objects.values_list("image", flat=True))),
        (UPLOAD_FOLDER, set(SelfieUpload.objects.values_list("file", flat=True))),
    ):
        try:
            _, files = default_storage.listdir(folder)
        except FileNotFoundError:
            continue
        for file in sorted(files):
            name = f"{folder}/{file}"
            if name in known or default_storage.get_modified_time(name) >= cutoff:
                continue
            default_storage.delete(name)
            deleted += 1
    return deleted


# --- Log in with Thalia ---------------------------------------------------------


def member_from_claims(*, claims: Mapping[str, Any]) -> Member:
    """The member linked to the website member `claims["sub"]`, made at the first login.

    Found by the site's id alone, so a changed name or e-mail address at the
    site still finds the same member. A new member gets the username
    `thalia-<id>` (with a random suffix if a local account took it) and no
    password: they can only log in through the website.
    """
    sub = str(claims["sub"])
    member = Member.objects.filter(thalia_id=sub).first()
    if member is not None:
        return member
    username = f"thalia-{sub}"[:150]
    if Member.objects.filter(username=username).exists():
        username = f"{username[:140]}-{secrets.token_hex(4)}"
    member = Member(username=username, thalia_id=sub)
    member.set_unusable_password()
    member.full_clean(exclude=["password"])
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError:
        # The same member's first login in another tab, a moment earlier.
        return Member.objects.get(thalia_id=sub)
    logger.info("new member %s for website member %s", member.username, sub)
    return member
