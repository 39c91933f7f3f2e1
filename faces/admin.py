"""Admin: albums and photos with their encoding status, and the import history.

Encodings and signed URLs are never shown. The website connection's page is
thalia/admin.py.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from faces import services
from faces.models import Album, ImportRun, Photo


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin[Album]):
    list_display = ("title", "date", "source", "hidden", "missing", "done", "pending", "failed")
    list_filter = ("source", "hidden", "missing")
    search_fields = ("title", "source_id")
    readonly_fields = ("source", "source_id", "location", "missing", "created")
    actions = ["reencode"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Album]:
        queryset: QuerySet[Album] = super().get_queryset(request)
        return queryset.annotate(
            done_total=Count("photos", filter=Q(photos__status=Photo.Status.DONE)),
            pending_total=Count("photos", filter=Q(photos__status=Photo.Status.PENDING)),
            failed_total=Count("photos", filter=Q(photos__status=Photo.Status.FAILED)),
        )

    @admin.display(description="encoded", ordering="done_total")
    def done(self, album: Album) -> int:
        return int(album.done_total)  # type: ignore[attr-defined]

    @admin.display(description="pending", ordering="pending_total")
    def pending(self, album: Album) -> int:
        return int(album.pending_total)  # type: ignore[attr-defined]

    @admin.display(description="failed", ordering="failed_total")
    def failed(self, album: Album) -> int:
        return int(album.failed_total)  # type: ignore[attr-defined]

    @admin.action(description="Re-encode all photos of the selected albums at the next import")
    def reencode(self, request: HttpRequest, queryset: QuerySet[Album]) -> None:
        ids = Photo.objects.filter(album__in=queryset).values_list("pk", flat=True)
        marked = services.photos_reencode(photo_ids=list(ids))
        self.message_user(
            request, f"{marked} photos will be encoded again by the next import.", messages.SUCCESS
        )


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin[Photo]):
    list_display = ("source_id", "album", "status", "face_count", "error", "encoded_at")
    list_filter = ("status", "album__source")
    search_fields = ("source_id", "error")
    list_select_related = ("album",)
    readonly_fields = (
        "album",
        "source_id",
        "origin",
        "content_hash",
        "width",
        "height",
        "status",
        "encoded_at",
        "error",
        "face_count",
    )
    exclude = ("remote_urls", "urls_fetched_at", "file")
    actions = ["reencode"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Photo]:
        queryset: QuerySet[Photo] = super().get_queryset(request)
        return queryset.annotate(face_total=Count("faces"))

    @admin.display(description="faces", ordering="face_total")
    def face_count(self, photo: Photo) -> int:
        return int(photo.face_total)  # type: ignore[attr-defined]

    @admin.action(description="Re-encode the selected photos at the next import")
    def reencode(self, request: HttpRequest, queryset: QuerySet[Photo]) -> None:
        marked = services.photos_reencode(photo_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, f"{marked} photos will be encoded again by the next import.", messages.SUCCESS
        )


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin[ImportRun]):
    """Read-only: rows are written by `manage.py import_albums` only."""

    list_display = ("started", "duration", "source", "summary", "error")

    @admin.display(description="took")
    def duration(self, run: ImportRun) -> str:
        if run.finished is None:
            return "unfinished"  # still running, or killed
        return f"{(run.finished - run.started).total_seconds():.0f} s"

    @admin.display(description="summary")
    def summary(self, run: ImportRun) -> str:
        return (
            f"{run.albums} albums · {run.photos_new} new · {run.photos_changed} changed · "
            f"{run.photos_removed} removed · {run.photos_resumed} already pending · "
            f"{run.photos_encoded} encoded · {run.photos_failed} failed · "
            f"{run.faces} faces · {run.matches} matches · {len(run.errors.splitlines())} errors"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ImportRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ImportRun | None = None) -> bool:
        return False
