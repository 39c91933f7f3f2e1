"""Admin for members; reference faces show counts only, never encodings or selfies."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from members.models import Member, ReferenceFace


@admin.register(Member)
class MemberAdmin(UserAdmin):
    list_display = ("username", "email", "is_staff", "consent_given_at", "reference_count")
    fieldsets = (*UserAdmin.fieldsets, ("Throwback", {"fields": ("consent_given_at",)}))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        return super().get_queryset(request).annotate(reference_total=Count("references"))

    @admin.display(description="selfies", ordering="reference_total")
    def reference_count(self, member: Member) -> int:
        return member.reference_total  # type: ignore[attr-defined]


@admin.register(ReferenceFace)
class ReferenceFaceAdmin(admin.ModelAdmin):
    list_display = ("id", "member", "created", "match_count")
    fields = ("member", "created")
    readonly_fields = ("member", "created")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReferenceFace]:
        return super().get_queryset(request).select_related("member").annotate(match_total=Count("matches"))

    @admin.display(description="matches", ordering="match_total")
    def match_count(self, reference: ReferenceFace) -> int:
        return reference.match_total  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
