"""JSON API for reference faces (session auth, CSRF header X-CSRFToken).

POST /api/references/ multipart `image` (+ `consent=yes`) → 201 {"id", "created", "warnings"}
or 400 {"error", "code"} (429 past THROWBACK_UPLOADS_PER_HOUR and 503 when the
queue is full, both with Retry-After; 503 when encoding failed on our side, see
services.EncodingFailed). The analysis runs in the encoder (members/selfies.py):
without a preference the request waits for it (THROWBACK_SELFIE_WAIT_SECONDS,
then 202 as below); with `Prefer: respond-async` (RFC 7240) it answers 202 at
once with `Location` of GET /api/references/uploads/<id>/ (the owner's only,
404 for anyone else): {"id", "state", "created", "finished", "selfie", "error",
"code"}. GET lists; DELETE /api/references/<id>/ → 204 / 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from members import selfies, services
from members.http import MemberRequest
from members.models import ReferenceFace, SelfieUpload
from members.uploads import read_upload


def api_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Like login_required, but answers 403 JSON instead of redirecting."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": "Log in first.", "code": "not_authenticated"}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _reference_json(reference: ReferenceFace) -> dict[str, object]:
    return {
        "id": reference.pk,
        "created": reference.created.isoformat(),
        "warnings": reference.warning_messages,
    }


@require_http_methods(["GET", "POST"])
@api_login_required
def references(request: MemberRequest) -> JsonResponse:
    if request.method == "GET":
        return JsonResponse(
            [_reference_json(r) for r in request.user.references.selfies().order_by("created", "id")],
            safe=False,
        )
    # Before the upload is read, so consent stays recorded when the upload is refused.
    if request.POST.get("consent") == "yes":
        services.consent_give(member=request.user)
    try:
        data = read_upload(request, "image")
        upload = selfies.selfie_upload_create(member=request.user, data=data)
    except services.ReferenceRejected as exc:
        return _refusal(exc.code, exc.message, exc.http_status, getattr(exc, "retry_after_s", None))
    if upload.pending and _prefers_async(request):
        response = _status_response(upload, status=202)
        response["Preference-Applied"] = "respond-async"
        return response
    if upload.pending:
        waited = selfies.selfie_upload_wait(
            upload_id=upload.pk, timeout_s=settings.THROWBACK_SELFIE_WAIT_SECONDS
        )
        if waited is None:  # deleted with the member's data while this request waited
            gone = services.ConsentWithdrawn()
            return _refusal(gone.code, gone.message, gone.http_status, None)
        upload = waited
    if upload.pending:
        return _status_response(upload, status=202)  # still queued: the status URL tells the rest
    if upload.state == SelfieUpload.State.REFUSED:
        return _refusal(upload.code, upload.message, services.refusal_http_status(upload.code), None)
    if upload.reference is None:  # done, and the selfie deleted since
        return _status_response(upload)
    # The selfie page's script goes on to My photos, which shows this as after a form post.
    messages.success(request, services.SELFIE_ADDED)
    return JsonResponse(_reference_json(upload.reference), status=201)


def _prefers_async(request: HttpRequest) -> bool:
    """Whether a `Prefer` header (RFC 7240) asks for respond-async."""
    tokens = request.headers.get("Prefer", "").replace(";", ",").split(",")
    return any(token.strip().lower() == "respond-async" for token in tokens)


def _refusal(code: str, message: str, status: int, retry_after_s: int | None) -> JsonResponse:
    response = JsonResponse({"error": message, "code": code}, status=status)
    if retry_after_s is not None:
        response["Retry-After"] = str(retry_after_s)
    return response


def _upload_json(upload: SelfieUpload) -> dict[str, object]:
    refused = upload.state == SelfieUpload.State.REFUSED
    return {
        "id": upload.pk,
        "state": upload.state,
        "created": upload.created.isoformat(),
        "finished": upload.finished.isoformat() if upload.finished else None,
        "selfie": _reference_json(upload.reference) if upload.reference is not None else None,
        "error": upload.message if refused else None,
        "code": upload.code if refused else None,
    }


def _status_response(upload: SelfieUpload, *, status: int = 200) -> JsonResponse:
    response = JsonResponse(_upload_json(upload), status=status)
    if upload.pending:
        response["Location"] = reverse("api:reference_upload", args=[upload.pk])
        response["Retry-After"] = "1"
    return response


@require_GET
@api_login_required
def reference_upload(request: MemberRequest, upload_id: int) -> JsonResponse:
    """An upload's state, for its owner only: anyone else gets the same 404 as for no upload."""
    upload = selfies.member_upload(member=request.user, upload_id=upload_id)
    if upload is None:
        return JsonResponse({"error": "No such upload.", "code": "not_found"}, status=404)
    return _status_response(upload)


@require_http_methods(["DELETE"])
@api_login_required
def reference_detail(request: MemberRequest, reference_id: int) -> HttpResponse:
    if not services.reference_delete(member=request.user, reference_id=reference_id):
        return JsonResponse({"error": "No such reference.", "code": "not_found"}, status=404)
    return HttpResponse(status=204)
