"""A Thalia member's own access token, kept in their session only.

Throwback never stores members' tokens in its tables: the token from the
login lives in the session, which ends when the token does (10 hours at
concrexit), and is used to ask the site again which albums the member may
see once the stored answer is older than THALIA_ALBUM_ACCESS_MAX_AGE_SECONDS
(by `album_access_middleware`, on every page while the session lasts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from faces.sources import SourceError
from members.models import Member
from thalia.services import album_access_refresh

logger = logging.getLogger(__name__)

TOKEN_KEY = "thalia_token"  # noqa: S105 (a session key, not a secret)
EXPIRES_KEY = "thalia_token_expires"  # Unix time
CHECKED_KEY = "thalia_albums_at"  # Unix time of the last good answer (0: none yet)
RETRY_AFTER_FAILURE_S = 60


def login_keep(request: HttpRequest, *, member: Member, access_token: str, expires_in_s: int) -> None:
    """After a Thalia login: keep the token, fetch the albums, end the session with the token."""
    now = time.time()
    request.session[TOKEN_KEY] = access_token
    request.session[EXPIRES_KEY] = now + expires_in_s
    request.session[CHECKED_KEY] = 0
    request.session.set_expiry(max(60, min(expires_in_s, settings.SESSION_COOKIE_AGE)))
    _refresh(request, member)


def album_access_refresh_if_stale(request: HttpRequest) -> None:
    """Ask the site again when the member's stored answer is stale and their token still lives."""
    if request.method not in ("GET", "HEAD") or not request.session.get(TOKEN_KEY):
        return
    now = time.time()
    if now >= request.session.get(EXPIRES_KEY, 0):
        return
    if now - request.session.get(CHECKED_KEY, 0) < settings.THALIA_ALBUM_ACCESS_MAX_AGE_SECONDS:
        return
    member = request.user
    if isinstance(member, Member) and member.thalia_id:
        _refresh(request, member)


def album_access_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Keeps a Thalia member's accessible albums fresh while their session lasts."""

    def middleware(request: HttpRequest) -> HttpResponse:
        album_access_refresh_if_stale(request)
        return get_response(request)

    return middleware


def _refresh(request: HttpRequest, member: Member) -> None:
    try:
        count = album_access_refresh(member=member, access_token=request.session[TOKEN_KEY])
    except SourceError as exc:
        # Keep the stored set (never widen on failure); try again in a minute.
        logger.warning("cannot fetch the albums member %s may see: %s", member.pk, exc)
        request.session[CHECKED_KEY] = (
            time.time() - settings.THALIA_ALBUM_ACCESS_MAX_AGE_SECONDS + RETRY_AFTER_FAILURE_S
        )
        return
    logger.info("member %s may see %d website albums", member.pk, count)
    request.session[CHECKED_KEY] = time.time()
