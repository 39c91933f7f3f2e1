"""JSON API: GET /api/photos/ (the member's matched photos), "not me" and "Is this you?".

GET /api/suggestions/ lists the member's open offers (id, photo id, the
photo's URL, the face's box in the photo's pixels); POST
/api/suggestions/<id>/ with `answer` "yes" or "no" → 204, 400 for another
answer, 404 for an offer that is not the member's open one."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from faces import services
from faces.selectors import member_suggestions, photo_page, with_display_urls
from members.api import api_login_required
from members.http import MemberRequest


@require_GET
@api_login_required
def photos(request: MemberRequest) -> JsonResponse:
    page = photo_page(request.user, request.GET.get("page"))
    # Absolute URLs from one base, not one build_absolute_uri a photo.
    base = request.build_absolute_uri("/")[:-1]

    def link(number: int) -> str:
        return f"{base}{request.path}?page={number}"

    results = [
        {
            "id": photo.pk,
            "source_id": photo.source_id,
            "url": base + url if url and url.startswith("/") else url,
            "album": {
                "id": photo.album.pk,
                "title": photo.album.title,
                "date": photo.album.date.isoformat() if photo.album.date else None,
            },
        }
        for photo, url in with_display_urls(list(page.object_list))
    ]
    return JsonResponse(
        {
            "count": page.paginator.count,
            "next": link(page.next_page_number()) if page.has_next() else None,
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "results": results,
        }
    )


@require_http_methods(["POST", "DELETE"])
@api_login_required
def photo_not_me(request: MemberRequest, photo_id: int) -> HttpResponse:
    """POST /api/photos/<id>/not-me/ hides, DELETE shows again (undo) → 204.

    404 for a photo that is not the member's (POST) or that they had not hidden (DELETE).
    """
    if request.method == "DELETE":
        done = services.photo_restore(member=request.user, photo_id=photo_id)
    else:
        done = services.photo_dismiss(member=request.user, photo_id=photo_id)
    if not done:
        return JsonResponse({"error": "No such photo.", "code": "not_found"}, status=404)
    return HttpResponse(status=204)


@require_GET
@api_login_required
def suggestions(request: MemberRequest) -> JsonResponse:
    base = request.build_absolute_uri("/")[:-1]
    return JsonResponse(
        [
            {
                "id": row.pk,
                "photo": row.photo.pk,
                "url": base + row.url if row.url and row.url.startswith("/") else row.url,
                "face": dict(zip(("left", "top", "width", "height"), row.box, strict=True)),
            }
            for row in member_suggestions(request.user, limit=None)
        ],
        safe=False,
    )


@require_POST
@api_login_required
def suggestion_answer(request: MemberRequest, suggestion_id: int) -> HttpResponse:
    answer = request.POST.get("answer")
    if answer not in ("yes", "no"):
        return JsonResponse({"error": "Answer yes or no.", "code": "invalid"}, status=400)
    if not services.suggestion_answer(member=request.user, suggestion_id=suggestion_id, yes=answer == "yes"):
        return JsonResponse({"error": "No such question.", "code": "not_found"}, status=404)
    return HttpResponse(status=204)
