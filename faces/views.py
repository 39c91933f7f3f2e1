"""Pages: the member's photos, and the file view for folder-imported photos."""

from __future__ import annotations

from itertools import groupby

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from faces.models import Photo
from faces.selectors import member_photos, with_display_urls
from faces.services import photo_content_type
from members.http import MemberRequest


@require_GET
@login_required
def photos(request: MemberRequest) -> HttpResponse:
    page = Paginator(member_photos(request.user), settings.THROWBACK_PHOTOS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    pairs = with_display_urls(list(page.object_list))
    albums = [(album, list(items)) for album, items in groupby(pairs, key=lambda pair: pair[0].album)]
    return render(
        request,
        "faces/photos.html",
        {
            "page": page,
            "albums": albums,
            "has_references": request.user.references.exists(),
        },
    )


def _get_photo_for_member(request: MemberRequest, photo_id: int) -> Photo:
    """A photo the member is matched in, or 404 (never reveal that it exists)."""
    photo = member_photos(request.user).filter(pk=photo_id).first()
    if photo is None or not photo.file:
        raise Http404("No such photo")
    return photo


@require_GET
@login_required
def photo_file(request: MemberRequest, photo_id: int) -> HttpResponseBase:
    photo = _get_photo_for_member(request, photo_id)
    try:
        handle = default_storage.open(photo.file.name, "rb")
    except FileNotFoundError:
        raise Http404("Photo file missing") from None
    response = FileResponse(handle, content_type=photo_content_type(photo))
    response["Cache-Control"] = "private, max-age=3600"
    return response
