from django.urls import path, register_converter

from faces import views
from faces.converters import YearConverter

register_converter(YearConverter, "year")

app_name = "faces"

urlpatterns = [
    path("photos/<int:photo_id>/", views.photo_detail, name="photo"),
    path("photos/<int:photo_id>/file/", views.photo_file, name="photo_file"),
    path("photos/<int:photo_id>/download/", views.photo_download, name="photo_download"),
    path("photos/<int:photo_id>/not-me/", views.photo_not_me, name="photo_not_me"),
    path("photos/<int:photo_id>/restore/", views.photo_restore, name="photo_restore"),
    path("albums/<int:album_id>/download/", views.album_download, name="album_download"),
    path("suggestions/<int:suggestion_id>/answer/", views.suggestion_answer, name="suggestion_answer"),
    path("years/", views.years, name="years"),
    path("years/<year:year>/", views.year, name="year"),
]
