from django.urls import path

from faces import views as face_views
from members import views

app_name = "members"

urlpatterns = [
    path("", face_views.home, name="photos"),
    path("consent/", views.consent, name="consent"),
    path("references/", views.references, name="references"),
    path("references/uploads/<int:upload_id>/", views.reference_upload, name="reference_upload"),
    path("references/<int:reference_id>/delete/", views.reference_delete, name="reference_delete"),
    path("references/<int:reference_id>/face.jpg", views.reference_face, name="reference_face"),
    path("privacy/notifications/", views.notifications, name="notifications"),
    path("notifications/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("privacy/delete/", views.data_delete, name="data_delete"),
    path("privacy/deleted/", views.data_deleted, name="data_deleted"),
    path("accounts/signup/", views.signup, name="signup"),
]
