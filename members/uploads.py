"""Reading an uploaded selfie with the size limit applied before reading it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from members.services import NotAnImage, UploadTooLarge

MULTIPART_OVERHEAD_BYTES = 64 * 1024


def read_upload(request: HttpRequest, field: str) -> bytes:
    """The bytes of one uploaded file, refusing oversized requests unread."""
    limit = settings.THROWBACK_UPLOAD_MAX_MB * 1024 * 1024
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + MULTIPART_OVERHEAD_BYTES:
        raise UploadTooLarge(f"This file is too large; the limit is {settings.THROWBACK_UPLOAD_MAX_MB} MB.")
    upload = request.FILES.get(field)
    if upload is None:
        raise NotAnImage("Choose a photo to upload.")
    if (upload.size or 0) > limit:
        raise UploadTooLarge(f"This file is too large; the limit is {settings.THROWBACK_UPLOAD_MAX_MB} MB.")
    data: bytes = upload.read()
    return data
