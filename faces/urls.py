from django.urls import path

from faces import views

app_name = "faces"

urlpatterns = [
    path("photos/<int:photo_id>/file/", views.photo_file, name="photo_file"),
]
