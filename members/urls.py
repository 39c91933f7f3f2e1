from django.urls import path

from faces import views as face_views
from members import views

app_name = "members"

urlpatterns = [
    path("", face_views.photos, name="photos"),
    path("consent/", views.consent, name="consent"),
    path("references/", views.references, name="references"),
    path("references/<int:reference_id>/delete/", views.reference_delete, name="reference_delete"),
    path("accounts/signup/", views.signup, name="signup"),
    # Log in with Thalia (OpenID Connect).
    path("accounts/thalia/login/", views.ThaliaLoginView.as_view(), name="thalia_login"),
    path("accounts/thalia/callback/", views.ThaliaCallbackView.as_view(), name="thalia_callback"),
]
