"""Admin for members; reference faces show counts only, never encodings or selfies."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from members import services
from members.models import LookAlike, Member, ReferenceFace


@admin.register(Member)
class MemberAdmin(UserAdmin[Member]):
    list_display = ("username", "email", "is_staff", "consent_given_at", "reference_count")
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Throwback", {"fields": ("consent_given_at",)}))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        queryset: QuerySet[Member] = super().get_queryset(request)
        return queryset.annotate(
            reference_total=Count("references", filter=Q(references__kind=ReferenceFace.Kind.SELFIE))
        )

    @admin.display(description="selfies", ordering="reference_total")
    def reference_count(self, member: Member) -> int:
        total: int = member.reference_total  # type: ignore[attr-defined]
        return total

    # Through the service, so the members' selfie files leave storage too.
    def delete_model(self, request: HttpRequest, obj: Member) -> None:
        services.member_delete(member=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        with transaction.atomic():
            for member in queryset:
                services.member_delete(member=member)


@admin.register(ReferenceFace)
class ReferenceFaceAdmin(admin.ModelAdmin[ReferenceFace]):
    list_display = ("id", "member", "created", "match_limit", "warnings", "match_count")
    fields = ("member", "created", "match_limit", "warnings")
    readonly_fields = ("member", "created", "match_limit", "warnings")

    # Selfies only: the references Throwback derives (mean, learned, confirmed) are never shown.
    def get_queryset(self, request: HttpRequest) -> QuerySet[ReferenceFace]:
        queryset: QuerySet[ReferenceFace] = super().get_queryset(request)
        return (
            queryset.filter(kind=ReferenceFace.Kind.SELFIE)
            .select_related("member")
            .annotate(match_total=Count("matches"))
        )

    @admin.display(description="matches", ordering="match_total")
    def match_count(self, reference: ReferenceFace) -> int:
        total: int = reference.match_total  # type: ignore[attr-defined]
        return total

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Through the service, so the selfie file leaves storage too.
    def delete_model(self, request: HttpRequest, obj: ReferenceFace) -> None:
        services.reference_delete(member=obj.member, reference_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ReferenceFace]) -> None:
        with transaction.atomic():
            for reference in queryset.select_related("member"):
                services.reference_delete(member=reference.member, reference_id=reference.pk)


@admin.register(LookAlike)
class LookAlikeAdmin(admin.ModelAdmin[LookAlike]):
    """Pairs of members whose selfies look alike: who and how close, never faces or encodings."""

    list_display = ("id", "first_member", "second_member", "distance", "created")
    fields = ("first_member", "second_member", "distance", "created")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[LookAlike]:
        queryset: QuerySet[LookAlike] = super().get_queryset(request)
        return queryset.select_related("reference__member", "other__member").defer(
            "reference__image", "other__image"
        )

    @admin.display(description="member")
    def first_member(self, pair: LookAlike) -> str:
        return pair.reference.member.get_username()

    @admin.display(description="looks like member")
    def second_member(self, pair: LookAlike) -> str:
        return pair.other.member.get_username()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LookAlike | None = None) -> bool:
        return False
