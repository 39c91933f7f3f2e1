"""The association website as the rest of Throwback sees it: thalia's public interface.

faces/ and members/ use the website only through the functions here (plus
the URLs in thalia/urls.py and the login backend and middleware named in
settings); what crosses is plain data, Throwback's models and
`faces.sources` types, never an HTTP object or error.

- `website_source()`: the photos API as a `faces.sources.Source` for the
  importer and pages, with Throwback's stored grant (renewed as needed);
  `website_location()`, its address as imports record it.
- The signed URL cache: the website hands out photo URLs that expire;
  `url_is_fresh` and `photo_urls_refresh` keep the cached ones usable,
  `photo_fetcher` (for encoding workers) and `photo_download` (for a
  member's download) fetch the file.
- A Thalia member's accessible albums, asked with their own token and stored
  (`album_access_refresh`, `album_access_store`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from faces.models import Album, Photo
from faces.sources import MAX_PHOTO_BYTES, Source, SourceAlbum, SourceError
from thalia import grant
from thalia.client import ConcrexitSource, download
from thalia.models import AlbumAccess
from thalia.oauth import OAuthError

if TYPE_CHECKING:
    from members.models import Member

logger = logging.getLogger(__name__)


# --- signed URL cache ---------------------------------------------------------
class AlbumLike(Protocol):
    """What the URL cache reads of an album: an Album or a selectors.AlbumRow."""

    @property
    def pk(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def title(self) -> str: ...


class PhotoLike(Protocol):
    """What the URL cache reads and updates of a photo: a Photo or a selectors.PhotoRow."""

    remote_urls: dict[str, str]
    urls_fetched_at: dt.datetime | None

    @property
    def pk(self) -> int: ...
    @property
    def album(self) -> AlbumLike: ...


def url_is_fresh(photo: PhotoLike, *, now: dt.datetime, margin_s: int) -> bool:
    """Whether the cached signed URLs stay valid for at least margin_s more."""
    if not photo.remote_urls or photo.urls_fetched_at is None:
        return False
    expires = photo.urls_fetched_at + dt.timedelta(seconds=settings.THALIA_URL_TTL_SECONDS)
    return expires - dt.timedelta(seconds=margin_s) > now


def website_location() -> str:
    """The website's address as imports record it (`Source.location`, Album.location)."""
    return str(settings.THALIA_API_URL).rstrip("/")


def website_source(*, for_page: bool = False) -> Source:
    """The website's API from settings: a `faces.sources.Source`.

    The token is Throwback's stored grant (`manage.py connect_thalia`),
    renewed when it is about to expire and once more when the site refuses
    it; without a stored grant, THALIA_ACCESS_TOKEN. A page that waits for
    the website gets a short timeout and no retries, so a slow or absent
    site costs a member seconds, not minutes.
    """
    try:
        stored = grant.importer_token()
    except OAuthError as exc:
        raise SourceError(
            f"cannot renew Throwback's token for the website: {exc}", permanent=exc.permanent
        ) from exc
    return ConcrexitSource(
        settings.THALIA_API_URL,
        stored or settings.THALIA_ACCESS_TOKEN,
        timeout_s=settings.THALIA_PAGE_TIMEOUT_SECONDS if for_page else settings.THALIA_TIMEOUT_SECONDS,
        retries=0 if for_page else settings.THALIA_RETRIES,
        retry_after_max_s=settings.THALIA_RETRY_AFTER_MAX_SECONDS,
        max_answer_bytes=settings.THALIA_MAX_ANSWER_BYTES,
        file_hosts=tuple(settings.THALIA_FILE_HOSTS),
        renew=_renew_stored_token if stored else None,
    )


def _renew_stored_token(rejected: str) -> str | None:
    try:
        return grant.importer_token_renew(rejected=rejected)
    except OAuthError as exc:
        logger.warning("the website refused Throwback's token and renewing it failed: %s", exc)
        return None


REFRESH_FAILURE_MEMORY_S = 60


def photo_urls_refresh(
    photos: Sequence[PhotoLike], *, for_page: bool = False, source: Source | None = None
) -> None:
    """Re-fetch signed URLs for website photos about to expire.

    One album request refreshes all of that album's photos. When the site
    cannot be reached, the cached URLs are kept; `selectors.with_display_urls`
    then hides the ones already expired. For pages, an album whose refresh
    just failed is not tried again for a minute. An import passes its own
    source, so its session is reused rather than one made per chunk.
    """
    now = timezone.now()
    margin = settings.THALIA_URL_REFRESH_MARGIN_SECONDS
    stale_albums = {
        photo.album.pk: photo.album
        for photo in photos
        if photo.album.source == Album.Source.CONCREXIT and not url_is_fresh(photo, now=now, margin_s=margin)
    }
    if not stale_albums:
        return
    if source is None:
        try:
            source = website_source(for_page=for_page)
        except SourceError as exc:
            logger.warning("cannot refresh photo URLs: %s", exc)
            return
    by_id = {photo.pk: photo for photo in photos}
    for album in stale_albums.values():
        failure_key = f"throwback:url-refresh-failed:{album.pk}"
        if for_page and cache.get(failure_key):
            continue
        try:
            listing = source.photos(SourceAlbum(album.source_id, album.title))
        except SourceError as exc:
            logger.warning("cannot refresh URLs of album %s: %s", album.source_id, exc)
            if for_page:
                cache.set(failure_key, True, REFRESH_FAILURE_MEMORY_S)
            continue
        fresh = {p.source_id: p for p in listing.photos}
        fetched = timezone.now()
        updated = []
        for photo in Photo.objects.filter(album_id=album.pk).only("id", "source_id", "origin"):
            item = fresh.get(photo.source_id)
            if item is None or item.origin != photo.origin:
                continue  # gone or replaced: the next import deals with it
            photo.remote_urls, photo.urls_fetched_at = item.urls, fetched
            updated.append(photo)
            if photo.pk in by_id:
                by_id[photo.pk].remote_urls, by_id[photo.pk].urls_fetched_at = item.urls, fetched
        Photo.objects.bulk_update(updated, ["remote_urls", "urls_fetched_at"], batch_size=500)


def photo_fetcher(photo: PhotoLike, *, source: Source) -> Callable[[], bytes]:
    """How an encoding worker downloads a website photo: a picklable call of `download`.

    The THALIA_ENCODE_VARIANT file (else `full`), from the URLs the photo
    has now: refresh them first (`photo_urls_refresh`) when they may be
    stale. The call raises SourceError; it imports no Django code.
    """
    url = photo.remote_urls.get(settings.THALIA_ENCODE_VARIANT) or photo.remote_urls.get("full", "")
    return functools.partial(
        download,
        url,
        allowed_origins=source.file_origins,
        max_bytes=MAX_PHOTO_BYTES,
        timeout_s=settings.THALIA_TIMEOUT_SECONDS,
        retries=settings.THALIA_RETRIES,
        retry_after_max_s=settings.THALIA_RETRY_AFTER_MAX_SECONDS,
    )


def photo_download(photo: Photo) -> bytes:
    """A website photo's full-size file for a member's download, fetched on the server.

    Its signed URL is refreshed first when about to expire (a page's short
    timeout, no retries). Raises SourceError when the link has expired and
    could not be renewed, or the file cannot be had.
    """
    photo_urls_refresh([photo], for_page=True)
    url = photo.remote_urls.get("full") or photo.remote_urls.get(settings.THALIA_DISPLAY_VARIANT)
    if not url or not url_is_fresh(photo, now=timezone.now(), margin_s=0):
        raise SourceError(
            "the website's link to this photo has expired and could not be renewed", permanent=False
        )
    source = website_source(for_page=True)
    return download(
        url,
        allowed_origins=source.file_origins,
        max_bytes=MAX_PHOTO_BYTES,
        timeout_s=settings.THALIA_TIMEOUT_SECONDS,
        retries=0,
    )


# --- The website albums a Thalia member may see ---------------------------------


def album_access_store(*, member: Member, slugs: Iterable[str]) -> None:
    """Make the member's accessible website albums exactly `slugs`."""
    wanted = set(slugs)
    with transaction.atomic():
        AlbumAccess.objects.filter(member=member).exclude(album_slug__in=wanted).delete()
        AlbumAccess.objects.bulk_create(
            [AlbumAccess(member=member, album_slug=slug) for slug in sorted(wanted)], ignore_conflicts=True
        )


def album_access_refresh(*, member: Member, access_token: str) -> int:
    """Ask the website, with the member's own token, which albums they may
    open, and store that set. Returns its size; raises SourceError (and
    keeps the stored set) when the site cannot be asked."""
    source = ConcrexitSource(
        settings.THALIA_API_URL,
        access_token,
        timeout_s=settings.THALIA_PAGE_TIMEOUT_SECONDS,
        retries=0,
        max_answer_bytes=settings.THALIA_MAX_ANSWER_BYTES,
        file_hosts=tuple(settings.THALIA_FILE_HOSTS),
    )
    slugs = [album.source_id for album in source.albums()]  # albums() leaves out inaccessible ones
    album_access_store(member=member, slugs=slugs)
    return len(slugs)
