"""Reads for pages and the API: a member's photos and where to load them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import ExtractYear
from django.urls import reverse
from django.utils import timezone

from faces.models import Album, Photo, PhotoQuerySet
from faces.services import photo_urls_refresh, url_is_fresh

if TYPE_CHECKING:
    from members.models import Member


def member_photos(member: Member) -> PhotoQuerySet:
    """The member's matched photos in visible albums, newest album first."""
    return Photo.objects.matched_to(member)


def with_display_urls(photos: list[Photo]) -> list[tuple[Photo, str | None]]:
    """Pair each photo with the URL a browser loads it from.

    Website photos use their cached signed URL, refreshed first when it would
    expire soon; an already expired URL is never handed out (None instead).
    Folder photos go through the view that checks the member's match.
    """
    photo_urls_refresh(photos, for_page=True)
    now = timezone.now()
    result: list[tuple[Photo, str | None]] = []
    for photo in photos:
        if photo.album.source == Album.Source.FOLDER:
            url: str | None = reverse("faces:photo_file", args=[photo.pk])
        elif url_is_fresh(photo, now=now, margin_s=0):
            variant = settings.THALIA_DISPLAY_VARIANT
            url = photo.remote_urls.get(variant) or photo.remote_urls.get("full")
        else:
            url = None
        result.append((photo, url))
    return result


def member_years(member: Member) -> list[tuple[int, int]]:
    """(year, number of photos) of the member's photos in dated albums, newest year first."""
    rows = (
        Photo.objects.filter(pk__in=Photo.objects.matched_to(member).values("pk"), album__date__isnull=False)
        .annotate(year=ExtractYear("album__date"))
        .values("year")
        .annotate(total=Count("id"))
        .order_by("-year")
    )
    return [(row["year"], row["total"]) for row in rows]


def member_photos_of_year(member: Member, year: int) -> PhotoQuerySet:
    """The member's photos in albums dated in that year, newest album first."""
    return Photo.objects.matched_to(member).filter(album__date__year=year)


def member_album_photos(member: Member, album_id: int) -> list[Photo]:
    """The member's photos in one visible album (empty for anyone not matched there)."""
    return list(Photo.objects.matched_to(member).filter(album_id=album_id))
