"""Reads for pages and the API: a member's photos and where to load them."""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import ExtractYear
from django.urls import reverse
from django.utils import timezone

from faces.models import Album, Photo, PhotoQuerySet
from thalia.services import photo_urls_refresh, url_is_fresh
from throwback.pagination import page_number

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


# The member's photos as PhotoQuerySet.matched_to selects them, as SQL: the
# ORM spent more CPU building and compiling this query than PostgreSQL spent
# running it. tests/test_photo_rows.py holds the two to the same answers.
MATCHED_FROM = """
    FROM faces_photo p JOIN faces_album a ON a.id = p.album_id
    WHERE NOT a.hidden AND NOT a.missing
      AND p.id IN (
        SELECT f.photo_id FROM faces_match m JOIN faces_faceencoding f ON f.id = m.face_id
        WHERE m.member_id = %(member)s
      )
      AND NOT EXISTS (SELECT 1 FROM faces_dismissal d WHERE d.member_id = %(member)s AND d.photo_id = p.id)
"""
# A Thalia member sees website albums only when the site said so (AlbumAccess).
THALIA_ALBUMS = """
      AND (a.source <> %(website)s OR a.source_id IN (
        SELECT s.album_slug FROM faces_albumaccess s WHERE s.member_id = %(member)s
      ))
"""
IN_YEAR = " AND a.date BETWEEN %(first)s AND %(last)s"
PAGE_SQL = """
    SELECT p.id, p.source_id, p.remote_urls, p.urls_fetched_at,
           a.id, a.source, a.source_id, a.title, a.date, COUNT(*) OVER ()
    {matched}
    ORDER BY a.date DESC NULLS LAST, a.created DESC, p.album_id, p.id
    LIMIT %(limit)s OFFSET %(offset)s
"""


def _matched(member: Member, year: int | None) -> tuple[str, dict[str, Any]]:
    """FROM and WHERE of the member's photos (of one year), and their parameters."""
    sql, params = MATCHED_FROM, {"member": member.pk, "website": Album.Source.CONCREXIT.value}
    if getattr(member, "thalia_id", None):
        sql += THALIA_ALBUMS
    if year is not None:
        sql += IN_YEAR
        params |= {"first": dt.date(year, 1, 1), "last": dt.date(year, 12, 31)}
    return sql, params


def _photo_rows(values: Iterable[tuple[Any, ...]]) -> list[PhotoRow]:
    """PAGE_SQL rows as PhotoRows; photos of one album share its AlbumRow."""
    albums: dict[int, AlbumRow] = {}
    rows = []
    for pk, source_id, remote_urls, fetched_at, album_id, *album in values:
        if album_id not in albums:
            albums[album_id] = AlbumRow(album_id, *album[:4])
        urls = json.loads(remote_urls) if isinstance(remote_urls, str) else remote_urls
        rows.append(PhotoRow(pk, source_id, albums[album_id], urls or {}, fetched_at))
    return rows


def member_photos(member: Member) -> PhotoQuerySet:
    """The member's matched photos in visible albums, newest album first."""
    return Photo.objects.matched_to(member)


def photo_page(member: Member, number: object, *, year: int | None = None) -> Page[PhotoRow]:
    """One page of the member's photos (of one year) as PhotoRows, counted by the same query.

    number is the raw `?page=` value, read by throwback.pagination.page_number:
    one that is not a number gives the first page, one past the end (or below 1,
    or too large for any page) the last. A window COUNT(*) OVER () comes with the
    page's rows, so a separate COUNT is only run when the requested page is empty.
    """
    per_page = settings.THROWBACK_PHOTOS_PER_PAGE
    wanted = page_number(number)
    if connection.vendor != "postgresql":
        return _photo_page_orm(member, wanted, year=year, per_page=per_page)
    matched, params = _matched(member, year)

    def rows(number: int) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            offset = (number - 1) * per_page
            cursor.execute(PAGE_SQL.format(matched=matched), {**params, "limit": per_page, "offset": offset})
            found: list[tuple[Any, ...]] = cursor.fetchall()
            return found

    if wanted is not None:
        found = rows(wanted)
        if found or wanted == 1:
            total = found[0][-1] if found else 0
            return Page(_photo_rows(found), wanted, Paginator[Any](range(total), per_page))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) {matched}", params)  # noqa: S608 - our own SQL, values as parameters
        (total,) = cursor.fetchone()
    paginator: Paginator[Any] = Paginator(range(total), per_page)
    shown = paginator.num_pages
    return Page(_photo_rows(rows(shown)), shown, paginator)


def _photo_page_orm(member: Member, wanted: int | None, *, year: int | None, per_page: int) -> Page[PhotoRow]:
    """photo_page through matched_to, for the embedded SQLite demo (wanted: page_number's answer).

    The hand-written SQL is PostgreSQL's (and a raw cursor on SQLite returns
    dates as text); the demo does not need its speed.
    """
    queryset = Photo.objects.matched_to(member)
    if year is not None:
        queryset = queryset.filter(album__date__year=year)
    values = queryset.values_list(
        "pk",
        "source_id",
        "remote_urls",
        "urls_fetched_at",
        "album_id",
        "album__source",
        "album__source_id",
        "album__title",
        "album__date",
    )
    paginator = Paginator[Any](values, per_page)
    page = paginator.get_page(paginator.num_pages if wanted is None else wanted)  # past the end: the last
    return Page(_photo_rows(page.object_list), page.number, page.paginator)


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
    photo_urls_refresh(photos, for_page=True)
    now = timezone.now()
    file_url = url_builder("faces:photo_file")
    variant = settings.THALIA_DISPLAY_VARIANT
    result: list[tuple[P, str | None]] = []
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
    if connection.vendor != "postgresql":  # the embedded SQLite demo: matched_to through the ORM
        rows = (
            Photo.objects.filter(
                pk__in=Photo.objects.matched_to(member).values("pk"), album__date__isnull=False
            )
            .annotate(year=ExtractYear("album__date"))
            .values("year")
            .annotate(total=Count("id"))
            .order_by("-year")
        )
        return [(row["year"], row["total"]) for row in rows]
    matched, params = _matched(member, None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXTRACT(YEAR FROM a.date)::integer, COUNT(*) {matched} AND a.date IS NOT NULL "  # noqa: S608
            "GROUP BY 1 ORDER BY 1 DESC",
            params,
        )
        return [(year, total) for year, total in cursor.fetchall()]


def member_album_photos(member: Member, album_id: int) -> list[Photo]:
    """The member's photos in one visible album (empty for anyone not matched there)."""
    return list(Photo.objects.matched_to(member).filter(album_id=album_id))


# "On this day" shows at most this many photos per earlier year.
ON_THIS_DAY_PHOTOS = 6


@dataclass(slots=True)
class OnThisDay:
    """The member's photos of one earlier year taken on today's calendar day."""

    years_ago: int
    album_titles: list[str]
    total: int
    photos: list[tuple[Photo, str | None]]  # the first ON_THIS_DAY_PHOTOS, with their URLs


def member_on_this_day(member: Member, *, today: dt.date) -> list[OnThisDay]:
    """The member's photos from albums dated on today's month and day in earlier years, newest year first.

    The same photos as My photos (`matched_to`: hidden albums, "Not me" and
    album access apply). On 28 February of a year without a 29th, albums of
    29 February count too, so they come round every year.
    """
    days = Q(album__date__month=today.month, album__date__day=today.day)
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        days |= Q(album__date__month=2, album__date__day=29)
    photos = list(
        Photo.objects.matched_to(member)
        .filter(days, album__date__year__lt=today.year)
        .order_by("-album__date", "album_id", "id")
    )
    result = []
    for year, items in groupby(photos, key=lambda photo: photo.album.date.year if photo.album.date else 0):
        group = list(items)
        titles = list(dict.fromkeys(photo.album.title for photo in group))
        shown = with_display_urls(group[:ON_THIS_DAY_PHOTOS])
        result.append(OnThisDay(today.year - year, titles, len(group), shown))
    return result


def _hidden_by(member: Member) -> PhotoQuerySet:
    """Photos the member said "not me" about, in albums they may still see.

    A dismissed photo keeps no match (its face may be someone else's), so
    these are found by the dismissal itself: only a photo once shown to the
    member can have one.
    """
    return Photo.objects.visible_to(member, dismissed=True).filter(dismissals__member=member)


def member_hidden_photos(member: Member) -> list[tuple[Photo, str | None]]:
    """The photos the member said "not me" about, most recently hidden first, with their URLs."""
    photos = list(_hidden_by(member).select_related("album").order_by("-dismissals__created", "-id"))
    return with_display_urls(photos)


def hidden_photo(member: Member, photo_id: int) -> Photo | None:
    """One photo the member hid, if they may still see its album (its file, for the privacy page's list)."""
    return _hidden_by(member).filter(pk=photo_id).select_related("album").first()


# --- "Is this you?" -------------------------------------------------------------------
@dataclass(slots=True)
class SuggestionRow:
    """An open "Is this you?" offer: the face's box as percentages of its photo, and where to load it."""

    pk: int
    photo: Photo
    url: str | None
    # The face's box (left, top, width, height) in the photo's pixels, for an SVG viewBox crop.
    box: tuple[int, int, int, int]
    view: tuple[int, int, int, int]


SUGGESTIONS_SHOWN = 3
# The crop around a face shown with the question: this many face sizes wide.
SUGGESTION_CONTEXT = 2.0


def member_suggestions(member: Member, *, limit: int | None = SUGGESTIONS_SHOWN) -> list[SuggestionRow]:
    """The member's open "Is this you?" offers, closest first, only in photos they may see.

    The photos obey every rule of `Photo.objects.visible_to` (hidden and
    missing albums, "not me", the website's album access), exactly as
    matched photos do.
    """
    from faces.models import Suggestion

    visible = Photo.objects.visible_to(member).values("pk")
    offers = (
        Suggestion.objects.filter(member=member, answer=Suggestion.Answer.OPEN, face__photo__in=visible)
        .select_related("face__photo__album")
        .order_by("distance", "id")
    )
    chosen = list(offers if limit is None else offers[:limit])
    pairs = dict((photo.pk, url) for photo, url in with_display_urls([offer.face.photo for offer in chosen]))
    rows = []
    for offer in chosen:
        face, photo = offer.face, offer.face.photo
        width, height = face.right - face.left, face.bottom - face.top
        side = int(max(width, height) * SUGGESTION_CONTEXT)
        x = max(0, (face.left + face.right) // 2 - side // 2)
        y = max(0, (face.top + face.bottom) // 2 - side // 2)
        rows.append(
            SuggestionRow(
                pk=offer.pk,
                photo=photo,
                url=pairs.get(photo.pk),
                box=(face.left, face.top, width, height),
                view=(x, y, side, side),
            )
        )
    return rows


def suggested_photo(member: Member, photo_id: int) -> Photo | None:
    """The photo of one of the member's open offers, if they may see it (for its file)."""
    from faces.models import Suggestion

    offered = Suggestion.objects.filter(
        member=member, answer=Suggestion.Answer.OPEN, face__photo_id=photo_id
    ).values("face__photo_id")
    return Photo.objects.visible_to(member).filter(pk__in=offered).select_related("album").first()
