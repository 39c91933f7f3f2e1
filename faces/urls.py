from django.urls import path

from faces import views

app_name = "faces"

urlpatterns = [
    path("photos/<int:photo_id>/", views.photo_detail, name="photo"),
    path("photos/<int:photo_id>/file/", views.photo_file, name="photo_file"),
    # Connecting Throwback to the website (the code page is shared with connect_thalia).
    path("accounts/thalia/code/", views.thalia_code, name="thalia_code"),
    path("accounts/thalia/connect/", views.thalia_connect, name="thalia_connect"),
    path("photos/<int:photo_id>/download/", views.photo_download, name="photo_download"),
    path("photos/<int:photo_id>/not-me/", views.photo_not_me, name="photo_not_me"),
    path("albums/<int:album_id>/download/", views.album_download, name="album_download"),
    path("suggestions/<int:suggestion_id>/answer/", views.suggestion_answer, name="suggestion_answer"),
    path("years/", views.years, name="years"),
    path("years/<int:year>/", views.year, name="year"),
]
