"""Reads for pages and the API: a member's photos and where to load them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Count, Window
from django.db.models.functions import ExtractYear
from django.urls import reverse
from django.utils import timezone

from faces.models import Album, Photo, PhotoQuerySet
from faces.services import photo_urls_refresh, url_is_fresh

if TYPE_CHECKING:
    from members.models import Member

# What a grid or the API shows of a photo and its album (see photo_page).
PAGE_FIELDS = (
    "id",
    "album_id",
    "source_id",
    "remote_urls",
    "urls_fetched_at",
    "album__id",
    "album__source",
    "album__source_id",
    "album__title",
    "album__date",
    "album__created",
)


def member_photos(member: Member) -> PhotoQuerySet:
    """The member's matched photos in visible albums, newest album first."""
    return Photo.objects.matched_to(member)


def photo_page(queryset: PhotoQuerySet, number: object) -> Page[Photo]:
    """One page of the queryset, counted by the same query.

    A window COUNT(*) OVER () comes with the page's rows, so the usual
    separate COUNT of Paginator is only run when the requested page is empty
    (past the end, or a page number below 1), where Paginator.get_page
    decides which page to show instead.
    """
    paginator: Paginator[Photo] = Paginator(queryset.only(*PAGE_FIELDS), settings.THROWBACK_PHOTOS_PER_PAGE)
    try:
        wanted = int(str(number)) if number is not None else 1
    except ValueError:
        wanted = 1
    if wanted >= 1:
        start = (wanted - 1) * paginator.per_page
        rows = list(
            paginator.object_list.annotate(page_total=Window(Count("*")))[start : start + paginator.per_page]
        )
        if rows or wanted == 1:
            # Paginator.count is a cached_property: the total is already known.
            paginator.count = rows[0].page_total if rows else 0  # type: ignore[misc,attr-defined]
            return Page(rows, wanted, paginator)
    return paginator.get_page(number)


def url_builder(name: str) -> Callable[[int], str]:
    """pk → URL of the named `<int:…>` route, reversed once instead of once a photo."""
    before, after = reverse(name, args=[1234567890]).split("1234567890")
    return lambda pk: f"{before}{pk}{after}"


def with_display_urls(photos: list[Photo]) -> list[tuple[Photo, str | None]]:
    """Pair each photo with the URL a browser loads it from.

    Website photos use their cached signed URL, refreshed first when it would
    expire soon; an already expired URL is never handed out (None instead).
    Folder photos go through the view that checks the member's match.
    """
    photo_urls_refresh(photos, for_page=True)
    now = timezone.now()
    file_url = url_builder("faces:photo_file")
    variant = settings.THALIA_DISPLAY_VARIANT
    result: list[tuple[Photo, str | None]] = []
    for photo in photos:
        if photo.album.source == Album.Source.FOLDER:
            url: str | None = file_url(photo.pk)
        elif url_is_fresh(photo, now=now, margin_s=0):
            url = photo.remote_urls.get(variant) or photo.remote_urls.get("full")
        else:
            url = None
        result.append((photo, url))
    return result


def member_years(member: Member) -> list[tuple[int, int]]:
    """(year, number of photos) of the member's photos in dated albums, newest year first."""
    rows = (
        Photo.objects.matched_to(member)
        .filter(album__date__isnull=False)
        .order_by()
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
