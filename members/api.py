"""JSON API for reference faces (session auth, CSRF header X-CSRFToken).

POST /api/references/ multipart `image` (+ `consent=yes`) → 201 {"id", "created", "warnings"}
or 400 {"error", "code"} (503 when encoding failed on our side, see
services.EncodingFailed); GET lists; DELETE /api/references/<id>/ → 204 / 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from members import services
from members.http import MemberRequest
from members.models import ReferenceFace
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
        reference = services.reference_add(member=request.user, data=data)
    except services.ReferenceRejected as exc:
        return JsonResponse({"error": exc.message, "code": exc.code}, status=exc.http_status)
    # The selfie page's script goes on to My photos, which shows this as after a form post.
    messages.success(request, services.SELFIE_ADDED)
    return JsonResponse(_reference_json(reference), status=201)


@require_http_methods(["DELETE"])
@api_login_required
def reference_detail(request: MemberRequest, reference_id: int) -> HttpResponse:
    if not services.reference_delete(member=request.user, reference_id=reference_id):
        return JsonResponse({"error": "No such reference.", "code": "not_found"}, status=404)
    return HttpResponse(status=204)
