"""Member pages: consent and privacy, reference faces (selfies), deleting one's data,
and demo sign-up. Log in with Thalia is thalia/views.py."""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from faces import selectors as face_selectors
from faces.models import Dismissal
from members import notifications as notifications_service
from members import selectors, selfies, services
from members.forms import ConsentForm, DeleteDataForm, NotificationsForm, ReferenceUploadForm, SignupForm
from members.http import MemberRequest
from members.lookalikes import member_has_lookalike
from members.models import ReferenceFace, SelfieUpload
from members.uploads import check_upload_size, read_uploaded_file

# The "analysing your selfie" page reloads itself this often (no JavaScript needed).
UPLOAD_PAGE_REFRESH_S = 2


@require_http_methods(["GET", "POST"])
@login_required
def consent(request: MemberRequest) -> HttpResponse:
    form = ConsentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        services.consent_give(member=request.user)
        return redirect("members:references")
    return _privacy_page(request, consent_form=form)


def _privacy_page(
    request: MemberRequest,
    *,
    consent_form: ConsentForm | None = None,
    notifications_form: NotificationsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    member = request.user
    if notifications_form is None:
        notifications_form = NotificationsForm(
            initial={"notify": member.notify_new_photos, "email": member.email}
        )
    return render(
        request,
        "members/consent.html",
        {
            "form": consent_form or ConsentForm(),
            "notifications_form": notifications_form,
            "hidden_photos": face_selectors.member_hidden_photos(member),
            "retention_days": settings.THROWBACK_RETENTION_DAYS,
            "limit": settings.THROWBACK_MAX_REFERENCES,
        },
        status=status,
    )


@require_POST
@login_required
def notifications(request: MemberRequest) -> HttpResponse:
    """The digest opt-in on the privacy page; takes effect at once (the next import's mails)."""
    form = NotificationsForm(request.POST)
    if not form.is_valid():
        return _privacy_page(request, notifications_form=form, status=400)
    if form.cleaned_data["notify"]:
        notifications_service.digest_subscribe(member=request.user, email=form.cleaned_data["email"])
        messages.success(
            request, f"We will email {request.user.email} when an import finds new photos of you."
        )
    else:
        notifications_service.digest_unsubscribe(member=request.user)
        messages.success(request, "No more emails about new photos.")
    return redirect(f"{reverse('members:consent')}#notifications")


@csrf_exempt  # the signed token is the credential; mail programs POST without cookies (RFC 8058)
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The link in every digest: works without logging in.

    GET shows one button (link checkers in mail systems open links, so a GET
    changes nothing); POST, from that button or a mail program's one-click
    List-Unsubscribe-Post, opts the member out.
    """
    member = notifications_service.member_from_unsubscribe_token(token)
    if member is None:
        return render(request, "members/unsubscribe.html", {"invalid": True}, status=404)
    done = request.method == "POST"
    if done:
        notifications_service.digest_unsubscribe(member=member)
    return render(request, "members/unsubscribe.html", {"done": done, "subscribed": member.notify_new_photos})


@require_http_methods(["GET", "POST"])
@login_required
def references(request: MemberRequest) -> HttpResponse:
    """My selfies; a posted selfie is queued and the member sent to its status page."""
    if not request.user.has_consented:
        return redirect("members:consent")
    form = ReferenceUploadForm()
    if request.method == "POST":
        try:
            # Before binding the form: a file dropped for its size is not "missing".
            check_upload_size(request)
            form = ReferenceUploadForm(request.POST, request.FILES)
            if form.is_valid():
                data = read_uploaded_file(form.cleaned_data["image"])
                upload = selfies.selfie_upload_create(member=request.user, data=data)
                return _upload_answer(request, upload)
        except services.ReferenceRejected as exc:
            return _references_page(request, form=form, refusal=exc.message)
    return _references_page(request, form=form)


@require_GET
@login_required
def reference_upload(request: MemberRequest, upload_id: int) -> HttpResponse:
    """Where a selfie upload stands: analysing (the page refreshes itself), then its outcome.

    The page for members without JavaScript; the selfie page's script comes
    here too once the status API says the analysis ended. 404 for anyone
    else's upload.
    """
    upload = selfies.member_upload(member=request.user, upload_id=upload_id)
    if upload is None:
        raise Http404("No such upload")
    return _upload_answer(request, upload)


def _upload_answer(request: MemberRequest, upload: SelfieUpload) -> HttpResponse:
    if upload.pending:
        if request.method == "POST":
            return redirect("members:reference_upload", upload.pk)
        return render(
            request,
            "members/upload_status.html",
            {"upload": upload, "refresh_seconds": UPLOAD_PAGE_REFRESH_S},
        )
    if upload.state == SelfieUpload.State.REFUSED:
        return _references_page(request, refusal=upload.message)
    if upload.reference is not None and upload.reference.warnings:
        # Stay on the selfie page: the list shows why this selfie may find few photos.
        if not _announce_once(request, upload):
            return redirect("members:references")
        messages.warning(
            request, "Selfie added, with a warning: " + " ".join(upload.reference.warning_messages)
        )
        return redirect("members:references")
    if _announce_once(request, upload):
        messages.success(request, services.SELFIE_ADDED)
    return redirect("members:photos")


ANNOUNCED_KEY = "throwback_uploads_announced"
ANNOUNCED_KEPT = 20


def _announce_once(request: MemberRequest, upload: SelfieUpload) -> bool:
    """Whether this finished upload's outcome is new to the member: a reload of its page adds nothing."""
    announced: list[int] = request.session.get(ANNOUNCED_KEY, [])
    if upload.pk in announced:
        return False
    request.session[ANNOUNCED_KEY] = [*announced, upload.pk][-ANNOUNCED_KEPT:]
    return True


def _references_page(
    request: MemberRequest, *, form: ReferenceUploadForm | None = None, refusal: str = ""
) -> HttpResponse:
    """My selfies, with why an upload was refused when it was (by the checks or the analysis)."""
    selfies.selfie_uploads_expire(member_id=request.user.pk)
    return render(
        request,
        "members/references.html",
        {
            "form": form or ReferenceUploadForm(),
            "refusal": refusal,
            "references": request.user.references.selfies().order_by("created", "id"),
            "waiting": request.user.selfie_uploads.filter(state__in=selfies.PENDING),
            "refused": selfies.member_uploads_refused(member=request.user),
            "lookalike": member_has_lookalike(request.user),
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


# --- Local accounts: log in (with a warning before the lock-out), lock-out, password reset ---


class LoginView(auth_views.LoginView):
    """Django's login page, which warns when one more failure locks the username out.

    django-axes counts the failures (per username and address) and answers
    the attempt that reaches THROWBACK_LOGIN_FAILURE_LIMIT with the lock-out
    page (registration/locked_out.html, AXES_LOCKOUT_TEMPLATE).
    """

    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        username = form.data.get("username", "")
        if settings.AXES_ENABLED and username:
            failures = AxesProxyHandler.get_failures(self.request, {"username": username})
            if settings.AXES_FAILURE_LIMIT - failures == 1:
                form.last_attempt_warning = True  # type: ignore[attr-defined]
        return super().form_invalid(form)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["cooloff_minutes"] = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        context["last_attempt"] = getattr(context["form"], "last_attempt_warning", False)
        return context


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE): a page of the site, HTTP 429.

    Says for how long (THROWBACK_LOGIN_COOLOFF_MINUTES after the last failed
    attempt) and offers the ways back: wait, reset the password, Log in with Thalia.
    """
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request, "registration/locked_out.html", {"username": username, "minutes": minutes}, status=429
    )


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset by email; links point at THROWBACK_SITE_URL.

    Django mails only active accounts with a usable password, so members who
    log in with Thalia (no password here) get nothing, and the page says the
    same whether or not the address is known.
    """

    email_template_name = "registration/password_reset_email.txt"

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        self.extra_email_context = {"site_url": settings.THROWBACK_SITE_URL}
        return super().form_valid(form)


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
        # The photos the member can see (My photos), not hidden albums or "not me" ones.
        "matches": face_selectors.member_photos(member).count(),
        "dismissals": Dismissal.objects.filter(member=member).count(),
    }
    return render(request, "members/delete.html", {"form": form, "counts": counts})


@require_GET
def data_deleted(request: HttpRequest) -> HttpResponse:
    """The confirmation after a deletion (also for a member whose account is gone)."""
    account = request.GET.get("account") == "1" and not request.user.is_authenticated
    return render(request, "members/deleted.html", {"account_deleted": account})
