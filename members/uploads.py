"""Reading an uploaded selfie with the size limit applied before reading it."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

from members.services import NotAnImage, UploadTooLarge, upload_limit_bytes

MULTIPART_OVERHEAD_BYTES = 64 * 1024


class SizeLimitUploadHandler(FileUploadHandler):
    """Drops uploaded files once a request's files pass THROWBACK_UPLOAD_MAX_MB.

    First in FILE_UPLOAD_HANDLERS, so Django's memory and temporary-file
    handlers after it never receive a byte beyond the limit, whoever parses
    the body first (CsrfViewMiddleware reads request.POST before any view).
    The rest of the body is read and discarded; the request is marked with
    `upload_limit_exceeded = True` for check_upload_size.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit_bytes = upload_limit_bytes()
        self.received_bytes = 0  # all files of the request together

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received_bytes += len(raw_data)
        if self.received_bytes > self.limit_bytes:
            if self.request is not None:
                self.request.upload_limit_exceeded = True  # type: ignore[attr-defined]
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        return None  # the handlers after this one build the file


def _too_large() -> UploadTooLarge:
    return UploadTooLarge(f"This file is too large; the limit is {settings.THROWBACK_UPLOAD_MAX_MB} MB.")


def check_upload_size(request: HttpRequest) -> None:
    """Raise UploadTooLarge when the request's upload is over the limit.

    Call before reading request.POST or FILES: a file that SizeLimitUploadHandler
    dropped would otherwise only look missing.
    """
    limit = upload_limit_bytes()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + MULTIPART_OVERHEAD_BYTES:
        raise _too_large()
    request.FILES  # noqa: B018 - parses the body through the upload handlers, if nothing has yet
    if getattr(request, "upload_limit_exceeded", False):
        raise _too_large()


def read_uploaded_file(upload: UploadedFile) -> bytes:
    """The bytes of one uploaded file; UploadTooLarge past the limit."""
    if (upload.size or 0) > upload_limit_bytes():
        raise _too_large()
    data: bytes = upload.read()
    return data


def read_upload(request: HttpRequest, field: str) -> bytes:
    """The bytes of one uploaded file; an upload over the limit is refused before it is read."""
    check_upload_size(request)
    upload = request.FILES.get(field)
    if upload is None:
        raise NotAnImage("Choose a photo to upload.")
    return read_uploaded_file(upload)
