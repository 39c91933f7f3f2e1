"""Pages: the member's photos, the file view for folder-imported photos, and
the pages where a superuser connects Throwback to the website (its code page
is shared with `manage.py connect_thalia`)."""

from __future__ import annotations

import logging
import secrets
from itertools import groupby

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from faces import thalia_grant
from faces.models import Photo
from faces.selectors import member_photos, with_display_urls
from faces.services import photo_content_type
from faces.sources import concrexit_oauth as oauth
from members.http import MemberRequest

logger = logging.getLogger(__name__)

CONNECT_KEY = "thalia_connect"  # the pending browser connection: state and PKCE verifier


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


# --- Connecting Throwback to the website ------------------------------------------


@require_GET
@login_required
def thalia_connect(request: HttpRequest) -> HttpResponse:
    """A superuser connects Throwback to the website in the browser (like `connect_thalia`)."""
    if not oauth.login_enabled():
        raise Http404("No OAuth application is configured (THALIA_OIDC_CLIENT_ID)")
    if not request.user.is_superuser:
        raise PermissionDenied("Only a superuser connects Throwback to the website")
    verifier, challenge = oauth.pkce_pair()
    state = secrets.token_urlsafe(16)
    request.session[CONNECT_KEY] = {"state": state, "verifier": verifier}
    return redirect(
        oauth.authorization_url(
            redirect_uri=request.build_absolute_uri(reverse("faces:thalia_code")),
            scope=settings.THALIA_CONNECT_SCOPES,
            state=state,
            challenge=challenge,
        )
    )


@require_GET
def thalia_code(request: HttpRequest) -> HttpResponse:
    """Where the website sends an admin who connects Throwback.

    After `thalia_connect` (same session, a superuser, the state it sent) the code
    is exchanged here; otherwise the page shows it for `connect_thalia`.
    """
    code, state, error = (request.GET.get(name, "") for name in ("code", "state", "error"))
    pending = request.session.pop(CONNECT_KEY, None)
    if pending and request.user.is_superuser and code and state == pending["state"]:
        try:
            thalia_grant.connection_connect(
                code=code,
                verifier=pending["verifier"],
                redirect_uri=request.build_absolute_uri(reverse("faces:thalia_code")),
                connected_by=request.user.get_username(),
            )
        except oauth.OAuthError as exc:
            logger.warning("connecting Throwback to the website failed: %s", exc)
            error = "the website refused the code; start again"
        else:
            messages.success(request, "Throwback is connected to the website; it renews its token itself.")
            return redirect("admin:faces_thaliaconnection_changelist")
    return render(request, "faces/thalia_code.html", {"code": code, "state": state, "error": error})
