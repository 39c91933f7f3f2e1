"""The website's pages in Throwback: "Log in with Thalia" (the start, to the website,
and the way back) and where a superuser connects Throwback to the website.

mozilla-django-oidc's views do the login protocol; the subclasses here
answer 404 while logging in with Thalia is off, and turn every way a login
can fail (refused consent, a stale or forged state, a used or expired code,
the website down, a bad ID token) into a page that says so, never a 500.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.decorators.http import require_GET
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from thalia import grant, oauth
from thalia.login import LoginFailed, get_setting, login_failure
from thalia.session import login_keep

logger = logging.getLogger(__name__)

CONNECT_KEY = "thalia_connect"  # the pending browser connection: state and PKCE verifier


# --- Log in with Thalia ---------------------------------------------------------------

LOGIN_FAILURES = {
    # code: (HTTP status, what the member reads)
    "denied": (403, "You did not allow Throwback to use your Thalia account, so you are not logged in."),
    "provider_error": (502, "Thalia could not log you in right now. Please try again."),
    "state": (
        400,
        "This login link has expired or was already used (for example after going back in the browser). "
        "Please start again.",
    ),
    "code": (
        400,
        "Thalia did not accept this login any more (it took too long, or was already used). Please start again.",
    ),
    "unreachable": (
        502,
        "Thalia's website cannot be reached at the moment. Please try again in a few minutes.",
    ),
    "token": (400, "Thalia's answer could not be verified, so you are not logged in. Please start again."),
    "inactive": (403, "Your Throwback account is disabled. Ask the board if you think this is wrong."),
}


def login_failed(request: HttpRequest, code: str) -> HttpResponse:
    status, message = LOGIN_FAILURES[code]
    return render(request, "thalia/login_failed.html", {"message": message, "code": code}, status=status)


class LoginView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    """Redirects to the website's authorization page (PKCE S256, state, nonce), as its
    discovery document names it; a page saying so when the document cannot be had."""

    get_settings = staticmethod(get_setting)

    def __init__(self, **kwargs: Any) -> None:
        # Not the library's __init__: it reads the authorization endpoint from settings; here it
        # comes from the provider's discovery document, in get().
        View.__init__(self, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.THALIA_OIDC_CLIENT_ID

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not oauth.login_enabled():
            raise Http404("Logging in with Thalia is not configured")
        response: HttpResponse = super().dispatch(request, *args, **kwargs)
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oauth.provider().authorization_endpoint
        except oauth.ProviderUnavailable as exc:
            failure = login_failure(exc)
            logger.warning("Thalia login cannot start: %s", failure)
            return login_failed(request, failure.reason)
        response: HttpResponse = super().get(request)
        return response


class CallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """Where the website sends the member back with a code (or an error)."""

    get_settings = staticmethod(get_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oauth.login_enabled():
            raise Http404("Logging in with Thalia is not configured")
        # A state this session did not send (forged, replayed, or from an
        # expired session) is refused before anything else in the answer is
        # believed: its `error` is not the website's word, and its code never
        # reaches the token endpoint.
        if request.GET.get("state", "") not in request.session.get("oidc_states", {}):
            logger.warning("Thalia login with an unknown state")
            return login_failed(request, "state")
        error = request.GET.get("error")
        if error:
            logger.info("Thalia login refused by the website: %s", error)
            self._failure = "denied" if error == "access_denied" else "provider_error"
        elif not request.GET.get("code"):
            return login_failed(request, "state")
        else:
            self._failure = "token"  # authentication came back empty: see the log
        try:
            response: HttpResponse = super().get(request)
        except LoginFailed as exc:
            logger.warning("Thalia login failed: %s", exc)
            return login_failed(request, exc.reason)
        return response

    def login_failure(self) -> HttpResponse:
        user = getattr(self, "user", None)
        if user is not None and not user.is_active:
            return login_failed(self.request, "inactive")
        return login_failed(self.request, self._failure)

    def login_success(self) -> HttpResponse:
        response: HttpResponse = super().login_success()
        login = getattr(self.request, "thalia_login", None)
        if login:
            login_keep(
                self.request,
                member=self.user,
                access_token=login["access_token"],
                expires_in_s=login["expires_in"],
            )
        return response


# --- Connecting Throwback to the website (the code page is shared with connect_thalia) ---


@require_GET
@login_required
def connect(request: HttpRequest) -> HttpResponse:
    """A superuser connects Throwback to the website in the browser (like `connect_thalia`)."""
    if not oauth.login_enabled():
        raise Http404("No OAuth application is configured (THALIA_OIDC_CLIENT_ID)")
    if not request.user.is_superuser:
        raise PermissionDenied("Only a superuser connects Throwback to the website")
    verifier, challenge = oauth.pkce_pair()
    state = secrets.token_urlsafe(16)
    try:
        address = oauth.authorization_url(
            redirect_uri=request.build_absolute_uri(reverse("thalia:code")),
            scope=settings.THALIA_CONNECT_SCOPES,
            state=state,
            challenge=challenge,
        )
    except oauth.OAuthError as exc:
        logger.warning("cannot start connecting Throwback to the website: %s", exc)
        context = {"error": "the website cannot be reached; try again later"}
        return render(request, "thalia/code.html", context, status=502)
    request.session[CONNECT_KEY] = {"state": state, "verifier": verifier}
    return redirect(address)


@require_GET
def code(request: HttpRequest) -> HttpResponse:
    """Where the website sends an admin who connects Throwback.

    After `connect` (same session, a superuser, the state it sent) the code
    is exchanged here; otherwise the page shows it for `connect_thalia`.
    """
    code, state, error = (request.GET.get(name, "") for name in ("code", "state", "error"))
    pending = request.session.pop(CONNECT_KEY, None)
    if pending and request.user.is_superuser and code and state == pending["state"]:
        try:
            grant.connection_connect(
                code=code,
                verifier=pending["verifier"],
                redirect_uri=request.build_absolute_uri(reverse("thalia:code")),
                connected_by=request.user.get_username(),
            )
        except oauth.OAuthError as exc:
            logger.warning("connecting Throwback to the website failed: %s", exc)
            error = "the website refused the code; start again"
        else:
            messages.success(request, "Throwback is connected to the website; it renews its token itself.")
            return redirect("admin:thalia_thaliaconnection_changelist")
    return render(request, "thalia/code.html", {"code": code, "state": state, "error": error})
