"""Consent and reference faces: the member-side state changes.

Upload problems are raised as ReferenceRejected subclasses carrying a stable
`code` and the message a member sees; views map nothing themselves.
"""

from __future__ import annotations

import io
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from faces import engine
from faces.matching import match_lock
from faces.services import engine_options, reference_match
from members.models import Member, ReferenceFace

SELFIE_STORED_MAX_SIDE_PX = 1024


class ReferenceRejected(Exception):
    code = "invalid"
    message = "This selfie cannot be used."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class ConsentRequired(ReferenceRejected):
    code = "consent"
    message = "Please agree to face processing before uploading a selfie."


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


def upload_limit_bytes() -> int:
    """THROWBACK_UPLOAD_MAX_MB in bytes: the one place the selfie size limit is computed."""
    limit: int = settings.THROWBACK_UPLOAD_MAX_MB * 1024 * 1024
    return limit


def consent_give(*, member: Member) -> None:
    """Record consent to face processing, once, with its time."""
    if member.consent_given_at is None:
        member.consent_given_at = timezone.now()
        member.save(update_fields=["consent_given_at"])


def reference_add(*, member: Member, data: bytes) -> ReferenceFace:
    """Store a selfie with exactly one face and match it against every photo face.

    The stored image is a re-encoded, upright JPEG (no EXIF, so no location).
    Raises a ReferenceRejected subclass naming the problem.
    """
    if not member.has_consented:
        raise ConsentRequired()
    if len(data) > upload_limit_bytes():
        raise UploadTooLarge(
            f"This file is {len(data) / 1024 / 1024:.1f} MB; the limit is {settings.THROWBACK_UPLOAD_MAX_MB} MB."
        )
    if member.references.count() >= settings.THROWBACK_MAX_REFERENCES:
        raise ReferenceLimitReached()
    options = engine_options(selfie=True)
    try:
        image = engine.load_image(data, max_pixels=options.max_pixels)
    except engine.ImageTooLarge as exc:
        raise UploadTooLarge("This image has too many pixels; please upload a smaller photo.") from exc
    except engine.NotAnImage as exc:
        raise NotAnImage() from exc
    stored, _ = engine.downscale(image, SELFIE_STORED_MAX_SIDE_PX)
    faces = engine.find_faces(stored, options)
    if not faces:
        raise NoFaceFound()
    if len(faces) > 1:
        raise SeveralFacesFound(f"This photo shows {len(faces)} faces. Use a photo with only you in it.")
    face = faces[0]
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=90)

    with transaction.atomic():
        # An import storing a photo at the same moment would otherwise match
        # its faces without this reference while this reference misses them.
        # Taken before the member row: an import holding it locks member rows
        # too (its matches' foreign keys), so the other order could deadlock.
        match_lock()
        # Lock the member row so two parallel uploads cannot pass the limit.
        Member.objects.select_for_update().filter(pk=member.pk).first()
        if member.references.count() >= settings.THROWBACK_MAX_REFERENCES:
            raise ReferenceLimitReached()
        reference = ReferenceFace(
            member=member, top=face.top, right=face.right, bottom=face.bottom, left=face.left
        )
        reference.set_encoding(face.encoding)
        reference.image.save(f"{uuid.uuid4().hex}.jpg", ContentFile(buffer.getvalue()), save=False)
        try:
            reference.full_clean(exclude=["image"])
            reference.save()
            reference_match(reference_id=reference.pk, vector=face.encoding)
        except Exception:
            default_storage.delete(reference.image.name)
            raise
    return reference


def reference_delete(*, member: Member, reference_id: int) -> bool:
    """Delete one of the member's own references, its matches and its image.

    Returns False when the member has no such reference (someone else's).
    """
    with transaction.atomic():
        # Taken first, as in reference_add: match writers wait for the removal.
        match_lock()
        reference = ReferenceFace.objects.filter(member=member, pk=reference_id).first()
        if reference is None:
            return False
        name = reference.image.name
        reference.delete()  # matches go with it (on_delete=CASCADE)
        transaction.on_commit(lambda: _storage_delete([name]))
    return True


def member_delete(*, member: Member) -> None:
    """Delete a member with their references and matches, and their selfie files.

    The files go only once the deletion is committed, so a rollback keeps them.
    """
    with transaction.atomic():
        match_lock()  # as in reference_delete
        names = [name for name in member.references.values_list("image", flat=True) if name]
        member.delete()  # references and matches go with it (on_delete=CASCADE)
        transaction.on_commit(lambda: _storage_delete(names))


def _storage_delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
