"""Member pages: consent and privacy, reference faces (selfies), deleting one's data,
and demo sign-up. Log in with Thalia is thalia/views.py."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from faces.models import Dismissal, Match
from members import selectors, services
from members.forms import ConsentForm, DeleteDataForm, ReferenceUploadForm, SignupForm
from members.http import MemberRequest
from members.models import ReferenceFace
from members.uploads import check_upload_size, read_uploaded_file


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
                services.reference_add(member=request.user, data=data)
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
            "references": request.user.references.order_by("created", "id"),
            "limit": settings.THROWBACK_MAX_REFERENCES,
            "max_bytes": services.upload_limit_bytes(),
            "max_mb": settings.THROWBACK_UPLOAD_MAX_MB,
        },
    )


@require_GET
@login_required
def reference_face(request: MemberRequest, reference_id: int) -> HttpResponse:
    """The face cropped from one of the member's own selfies; 404 for anyone else, staff too."""
    reference = ReferenceFace.objects.filter(member=request.user, pk=reference_id).first()
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
        "references": ReferenceFace.objects.filter(member=member).count(),
        "matches": Match.objects.filter(member=member).values("face__photo").distinct().count(),
        "dismissals": Dismissal.objects.filter(member=member).count(),
    }
    return render(request, "members/delete.html", {"form": form, "counts": counts})


@require_GET
def data_deleted(request: HttpRequest) -> HttpResponse:
    """The confirmation after a deletion (also for a member whose account is gone)."""
    account = request.GET.get("account") == "1" and not request.user.is_authenticated
    return render(request, "members/deleted.html", {"account_deleted": account})
