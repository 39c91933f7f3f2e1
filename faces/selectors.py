"""Reads for pages and the API: a member's photos and where to load them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Count, Window
from django.db.models.functions import ExtractYear
from django.urls import reverse
from django.utils import timezone

from faces.models import Album, Photo, PhotoQuerySet
from faces.services import photo_urls_refresh

if TYPE_CHECKING:
    from members.models import Member

P = TypeVar("P", "Photo", "PhotoRow")


@dataclass(slots=True)
class AlbumRow:
    """What a grid or the API shows of an album."""

    pk: int
    source: str
    source_id: str
    title: str
    date: dt.date | None


@dataclass(slots=True)
class PhotoRow:
    """What a grid or the API shows of a photo: read as plain values, not model instances."""

    pk: int
    source_id: str
    album: AlbumRow
    remote_urls: dict[str, str]
    urls_fetched_at: dt.datetime | None


ROW_FIELDS = (
    "id",
    "source_id",
    "remote_urls",
    "urls_fetched_at",
    "album_id",
    "album__source",
    "album__source_id",
    "album__title",
    "album__date",
)


def _photo_rows(values: Iterable[tuple[Any, ...]]) -> list[PhotoRow]:
    """ROW_FIELDS tuples as rows; photos of one album share its AlbumRow."""
    albums: dict[int, AlbumRow] = {}
    rows = []
    for pk, source_id, remote_urls, fetched_at, album_id, *album in values:
        if album_id not in albums:
            albums[album_id] = AlbumRow(album_id, *album[:4])
        rows.append(PhotoRow(pk, source_id, albums[album_id], remote_urls or {}, fetched_at))
    return rows


def member_photos(member: Member) -> PhotoQuerySet:
    """The member's matched photos in visible albums, newest album first."""
    return Photo.objects.matched_to(member)


def photo_page(queryset: PhotoQuerySet, number: object) -> Page[PhotoRow]:
    """One page of the queryset as PhotoRows, counted by the same query.

    A window COUNT(*) OVER () comes with the page's rows, so the usual
    separate COUNT of Paginator is only run when the requested page is empty
    (past the end, or a page number below 1), where Paginator.get_page
    decides which page to show instead.
    """
    values = queryset.values_list(*ROW_FIELDS)
    paginator: Paginator[Any] = Paginator(values, settings.THROWBACK_PHOTOS_PER_PAGE)
    try:
        wanted = int(str(number)) if number is not None else 1
    except ValueError:
        wanted = 1
    if wanted >= 1:
        start = (wanted - 1) * paginator.per_page
        counted = list(values.annotate(page_total=Window(Count("*")))[start : start + paginator.per_page])
        if counted or wanted == 1:
            # Paginator.count is a cached_property: the total is already known.
            paginator.count = counted[0][-1] if counted else 0
            return Page(_photo_rows(row[:-1] for row in counted), wanted, paginator)
    page = paginator.get_page(number if isinstance(number, str | int) else None)
    return Page(_photo_rows(page.object_list), page.number, paginator)


def url_builder(name: str) -> Callable[[int], str]:
    """pk → URL of the named `<int:…>` route, reversed once instead of once a photo."""
    before, after = reverse(name, args=[1234567890]).split("1234567890")
    return lambda pk: f"{before}{pk}{after}"


def with_display_urls(photos: Sequence[P]) -> list[tuple[P, str | None]]:
    """Pair each photo (a Photo or a PhotoRow) with the URL a browser loads it from.

    Website photos use their cached signed URL, refreshed first when it would
    expire soon; an already expired URL is never handed out (None instead).
    Folder photos go through the view that checks the member's match.
    """
    now = timezone.now()
    margin = settings.THALIA_URL_REFRESH_MARGIN_SECONDS
    stale = [
        photo
        for photo in photos
        if photo.album.source == Album.Source.CONCREXIT
        and not _url_fresh(photo.remote_urls, photo.urls_fetched_at, now, margin)
    ]
    if stale:
        _refresh(stale)
    file_url = url_builder("faces:photo_file")
    variant = settings.THALIA_DISPLAY_VARIANT
    result: list[tuple[P, str | None]] = []
    for photo in photos:
        if photo.album.source == Album.Source.FOLDER:
            url: str | None = file_url(photo.pk)
        elif _url_fresh(photo.remote_urls, photo.urls_fetched_at, now, 0):
            url = photo.remote_urls.get(variant) or photo.remote_urls.get("full")
        else:
            url = None
        result.append((photo, url))
    return result


def _url_fresh(
    remote_urls: dict[str, str], fetched_at: dt.datetime | None, now: dt.datetime, margin_s: int
) -> bool:
    """services.url_is_fresh for a Photo or a PhotoRow."""
    if not remote_urls or fetched_at is None:
        return False
    return fetched_at + dt.timedelta(seconds=settings.THALIA_URL_TTL_SECONDS - margin_s) > now


def _refresh(stale: Sequence[Photo | PhotoRow]) -> None:
    """services.photo_urls_refresh (which works on Photo instances), copied back onto rows."""
    photos: list[Photo] = [photo for photo in stale if isinstance(photo, Photo)]
    rows = {photo.pk: photo for photo in stale if isinstance(photo, PhotoRow)}
    if rows:
        photos.extend(Photo.objects.select_related("album").filter(pk__in=rows))
    photo_urls_refresh(photos, for_page=True)
    for photo in photos:
        if photo.pk in rows:
            rows[photo.pk].remote_urls = photo.remote_urls
            rows[photo.pk].urls_fetched_at = photo.urls_fetched_at


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
