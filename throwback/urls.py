from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path

from faces import api as faces_api
from members import api as members_api
from members import views as members_views

api_patterns = [
    path("references/", members_api.references, name="references"),
    path("references/<int:reference_id>/", members_api.reference_detail, name="reference"),
    path("references/uploads/<int:upload_id>/", members_api.reference_upload, name="reference_upload"),
    path("photos/", faces_api.photos, name="photos"),
    path("photos/<int:photo_id>/not-me/", faces_api.photo_not_me, name="photo_not_me"),
    path("suggestions/", faces_api.suggestions, name="suggestions"),
    path("suggestions/<int:suggestion_id>/", faces_api.suggestion_answer, name="suggestion"),
]


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """/favicon.ico, which browsers ask for on pages without an icon link (the admin)."""
    return HttpResponseRedirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("accounts/login/", members_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset by email, for local accounts (Django's views and forms).
    path("accounts/password/reset/", members_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    path("api/", include((api_patterns, "api"))),
    path("", include("faces.urls")),
    path("", include("members.urls")),
    path("", include("thalia.urls")),
]
