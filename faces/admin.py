"""Admin: albums and photos with their encoding status. Encodings are never shown."""

from __future__ import annotations

from django.contrib import admin

from faces.models import Album, Photo


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin[Album]):
    list_display = ("title", "date", "source", "source_id", "hidden", "created")
    list_filter = ("source", "hidden")
    search_fields = ("title", "source_id")


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin[Photo]):
    list_display = ("source_id", "album", "status", "error", "encoded_at")
    list_filter = ("status", "album__source")
    search_fields = ("source_id", "error")
    list_select_related = ("album",)
    readonly_fields = ("content_hash", "width", "height", "encoded_at", "error")
    exclude = ("remote_urls",)
