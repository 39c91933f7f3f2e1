from django.urls import path

from faces import views

app_name = "faces"

urlpatterns = [
    path("photos/<int:photo_id>/file/", views.photo_file, name="photo_file"),
    # Connecting Throwback to the website (the code page is shared with connect_thalia).
    path("accounts/thalia/code/", views.thalia_code, name="thalia_code"),
    path("accounts/thalia/connect/", views.thalia_connect, name="thalia_connect"),
]
