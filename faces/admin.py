"""Admin: albums and photos with their encoding status (encodings are never shown),
and the website connection: its state, never its tokens."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from faces.models import Album, Photo, ThaliaConnection


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


@admin.register(ThaliaConnection)
class ThaliaConnectionAdmin(admin.ModelAdmin[ThaliaConnection]):
    list_display = ("connected_by", "connected_at", "expires_at", "refreshed_at", "scope", "last_error")
    fields = ("connected_by", "connected_at", "expires_at", "refreshed_at", "scope", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by `manage.py connect_thalia`

    def has_change_permission(self, request: HttpRequest, obj: ThaliaConnection | None = None) -> bool:
        return False
