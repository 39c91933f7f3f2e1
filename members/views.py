"""Member pages: consent and privacy, reference faces (selfies), deleting one's data,
demo sign-up, and Log in with Thalia (the start, to the website, and the way back).

mozilla-django-oidc's views do the login protocol; the Thalia subclasses
answer 404 while logging in with Thalia is off, and turn every way a login
can fail (refused consent, a stale or forged state, a used or expired code,
the website down, a bad ID token) into a page that says so, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from faces.models import Dismissal, Match
from faces.sources import concrexit_oauth as oauth
from members import selectors, services
from members.forms import ConsentForm, DeleteDataForm, ReferenceUploadForm, SignupForm
from members.http import MemberRequest
from members.models import ReferenceFace
from members.oidc import get_setting
from members.thalia_session import login_keep
from members.uploads import check_upload_size, read_uploaded_file

logger = logging.getLogger(__name__)


@require_http_methods(["GET", "POST"])
@login_required
def consent(request: MemberRequest) -> HttpResponse:
    form = ConsentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        services.consent_give(member=request.user)
        return redirect("members:references")
    return render(
        request,
        "members/consent.html",
        {
            "form": form,
            "retention_days": settings.THROWBACK_RETENTION_DAYS,
            "limit": settings.THROWBACK_MAX_REFERENCES,
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def references(request: MemberRequest) -> HttpResponse:
    if not request.user.has_consented:
        return redirect("members:consent")
    form = ReferenceUploadForm()
    refusal = ""  # why the service or the size limit refused the upload
    if request.method == "POST":
        try:
            # Before binding the form: a file dropped for its size is not "missing".
            check_upload_size(request)
            form = ReferenceUploadForm(request.POST, request.FILES)
            if form.is_valid():
                data = read_uploaded_file(form.cleaned_data["image"])
                reference = services.reference_add(member=request.user, data=data)
                if reference.warnings:
                    # Stay here: the list below shows why this selfie may find few photos.
                    messages.warning(
                        request, "Selfie added, with a warning: " + " ".join(reference.warning_messages)
                    )
                    return redirect("members:references")
                messages.success(request, "Selfie added. Your photos are below.")
                return redirect("members:photos")
        except services.ReferenceRejected as exc:
            refusal = exc.message
    return render(
        request,
        "members/references.html",
        {
            "form": form,
            "refusal": refusal,
            "references": request.user.references.selfies().order_by("created", "id"),
            "limit": settings.THROWBACK_MAX_REFERENCES,
            "max_bytes": services.upload_limit_bytes(),
            "max_mb": settings.THROWBACK_UPLOAD_MAX_MB,
        },
    )


@require_GET
@login_required
def reference_face(request: MemberRequest, reference_id: int) -> HttpResponse:
    """The face cropped from one of the member's own selfies; 404 for anyone else, staff too."""
    reference = ReferenceFace.objects.selfies().filter(member=request.user, pk=reference_id).first()
    if reference is None:
        raise Http404("No such reference")
    try:
        data = selectors.reference_face_crop(reference)
    except FileNotFoundError:
        raise Http404("Selfie file missing") from None
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@login_required
def reference_delete(request: MemberRequest, reference_id: int) -> HttpResponse:
    if not services.reference_delete(member=request.user, reference_id=reference_id):
        raise Http404("No such reference")
    messages.success(request, "Selfie deleted, with its matches.")
    return redirect("members:references")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.THROWBACK_ALLOW_SIGNUP:
        raise Http404("Sign-up is closed")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        member = form.save()
        login(request, member, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("members:consent")
    return render(request, "registration/signup.html", {"form": form})


# --- Log in with Thalia -------------------------------------------------------

THALIA_LOGIN_FAILURES = {
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


def thalia_login_failed(request: HttpRequest, code: str) -> HttpResponse:
    status, message = THALIA_LOGIN_FAILURES[code]
    return render(
        request, "members/thalia_login_failed.html", {"message": message, "code": code}, status=status
    )


class ThaliaLoginView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    """Redirects to the website's authorization page (PKCE S256, state, nonce)."""

    get_settings = staticmethod(get_setting)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not oauth.login_enabled():
            raise Http404("Logging in with Thalia is not configured")
        response: HttpResponse = super().dispatch(request, *args, **kwargs)
        return response


class ThaliaCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """Where the website sends the member back with a code (or an error)."""

    get_settings = staticmethod(get_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oauth.login_enabled():
            raise Http404("Logging in with Thalia is not configured")
        error = request.GET.get("error")
        if error:
            logger.info("Thalia login refused by the website: %s", error)
            self._failure = "denied" if error == "access_denied" else "provider_error"
        else:
            # A state this session did not send (forged, replayed, or from an
            # expired session) never reaches the token endpoint.
            state = request.GET.get("state", "")
            if not request.GET.get("code") or state not in request.session.get("oidc_states", {}):
                logger.warning("Thalia login with an unknown state")
                return thalia_login_failed(request, "state")
            self._failure = "token"  # authentication came back empty: see the log
        try:
            response: HttpResponse = super().get(request)
        except oauth.ProviderHTTPError as exc:
            logger.warning("Thalia login failed at the token or userinfo endpoint: %s", exc)
            status = exc.response.status_code if exc.response is not None else 0
            # 400 is the token endpoint refusing the code (invalid_grant); 401 a wrong client
            # secret, a matter for the log and the admin rather than the member.
            return thalia_login_failed(request, "code" if status == 400 else "provider_error")
        except oauth.ProviderUnreachable as exc:
            logger.warning("Thalia login failed: %s: %s", exc.__class__.__name__, exc)
            return thalia_login_failed(request, "unreachable")
        except (SuspiciousOperation, jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            logger.warning("Thalia login failed: %s: %s", exc.__class__.__name__, exc)
            return thalia_login_failed(request, "token")
        return response

    def login_failure(self) -> HttpResponse:
        user = getattr(self, "user", None)
        if user is not None and not user.is_active:
            return thalia_login_failed(self.request, "inactive")
        return thalia_login_failed(self.request, self._failure)

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


@require_http_methods(["GET", "POST"])
@login_required
def data_delete(request: MemberRequest) -> HttpResponse:
    """ "Delete all my data": what goes, a confirmation, then the deletion."""
    member = request.user
    form = DeleteDataForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["delete_account"]:
            services.member_delete(member=member)
            logout(request)
            response = redirect(f"{reverse('members:data_deleted')}?account=1")
        else:
            services.member_face_data_delete(member=member)
            response = redirect("members:data_deleted")
        # Photo files are cached privately for an hour (faces.views.photo_file):
        # ask the browser to drop them too, so this browser no longer shows them.
        response["Clear-Site-Data"] = '"cache"'
        return response
    counts = {
        "references": ReferenceFace.objects.selfies().filter(member=member).count(),
        "matches": Match.objects.filter(member=member).values("face__photo").distinct().count(),
        "dismissals": Dismissal.objects.filter(member=member).count(),
    }
    return render(request, "members/delete.html", {"form": form, "counts": counts})


@require_GET
def data_deleted(request: HttpRequest) -> HttpResponse:
    """The confirmation after a deletion (also for a member whose account is gone)."""
    account = request.GET.get("account") == "1" and not request.user.is_authenticated
    return render(request, "members/deleted.html", {"account_deleted": account})
