"""Member pages: consent, reference faces (selfies), and demo sign-up."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from members import services
from members.forms import ConsentForm, ReferenceUploadForm, SignupForm
from members.http import MemberRequest
from members.uploads import check_upload_size, read_uploaded_file


@require_http_methods(["GET", "POST"])
@login_required
def consent(request: MemberRequest) -> HttpResponse:
    form = ConsentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.consent_give(member=request.user)
        return redirect("members:references")
    return render(request, "members/consent.html", {"form": form})


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
        },
    )


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
