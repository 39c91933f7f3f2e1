"""Admin: Throwback's connection to the website, read-only and without its tokens."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from thalia.models import ThaliaConnection


@admin.register(ThaliaConnection)
class ThaliaConnectionAdmin(admin.ModelAdmin[ThaliaConnection]):
    list_display = ("connected_by", "connected_at", "expires_at", "refreshed_at", "scope", "last_error")
    fields = ("connected_by", "connected_at", "expires_at", "refreshed_at", "scope", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by `manage.py connect_thalia`

    def has_change_permission(self, request: HttpRequest, obj: ThaliaConnection | None = None) -> bool:
        return False
