"""The association website's photos API (concrexit v2): its HTTP client.

Albums come from /api/v2/photos/albums/ (limit/offset pages), their photos
from the album detail, dates from the album's event. File URLs are signed and
expire; they are downloaded without credentials, and only from the site's own
origin or the hosts in `file_hosts` (its CDN). The bearer token only ever goes
to the site's own origin, never over a downgraded scheme.

`ConcrexitSource` is a `faces.sources.Source`: the importer lists and
downloads through it without knowing the website. Every request keeps the
limits of `thalia.transport` (a deadline per attempt, a capped Retry-After,
a capped answer). `download()` imports no Django code, so encoding worker
processes can run it (see `thalia.services.photo_fetcher`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from faces.sources import AlbumListing, DatesUnavailable, SourceAlbum, SourceError, SourcePhoto
from thalia import transport

logger = logging.getLogger(__name__)

ALBUMS_PATH = "/api/v2/photos/albums/"
EVENTS_PATH = "/api/v2/events/"
MAX_PAGES = 10_000
VARIANTS = ("full", "small", "medium", "large")


class ConcrexitSource:
    kind = "concrexit"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 20.0,
        retries: int = 3,
        retry_after_max_s: float = 60.0,
        max_answer_bytes: int = 20 * 1024 * 1024,
        file_hosts: tuple[str, ...] = (),
        renew: Callable[[str], str | None] | None = None,
    ) -> None:
        """`timeout_s` is each request's deadline (connect and the whole answer),
        `retry_after_max_s` the longest wait a Retry-After can ask for, and
        `max_answer_bytes` the largest API answer read. `renew(rejected_token)`
        (Throwback's stored grant) gives a new token after the site refused
        one with 401/403, or None; it is asked once per source, so an album
        that is simply forbidden costs at most one renewal."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SourceError(f"THALIA_API_URL {base_url!r} is not an http(s) URL", permanent=True)
        if not token:
            raise SourceError(
                "no token for the website: run `manage.py connect_thalia` or set THALIA_ACCESS_TOKEN",
                permanent=True,
            )
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_after_max_s = retry_after_max_s
        self.max_answer_bytes = max_answer_bytes
        self.origin = f"{parts.scheme}://{parts.netloc}"
        # Photo files may also come from the CDN, over https (or the site's own scheme).
        self.file_origins = (
            self.origin,
            *(f"{scheme}://{host}" for host in file_hosts for scheme in {"https", parts.scheme}),
        )
        self.session = transport.make_session(retries, retry_after_max_s=retry_after_max_s)
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._renew = renew

    @property
    def location(self) -> str:
        return self.base_url

    # --- API --------------------------------------------------------------
    def _get_json(self, url: str) -> Any:
        self._check_url(url)
        response = self._send(url)
        if response.status in (401, 403) and self._renew is not None:
            renew, self._renew = self._renew, None
            fresh = renew(self.token)
            if fresh is not None:
                self.token = fresh
                self.session.headers["Authorization"] = f"Bearer {fresh}"
                response = self._send(url)
        if response.status in (401, 403, 404):
            raise _Refused(f"{url}: HTTP {response.status}", status=response.status)
        if response.status != 200:
            raise SourceError(f"{url}: HTTP {response.status}", permanent=False)
        try:
            return json.loads(response.body)
        except ValueError as exc:
            raise SourceError(f"{url}: the answer is not JSON", permanent=False) from exc

    def _send(self, url: str) -> transport.Answer:
        try:
            return transport.get(self.session, url, timeout_s=self.timeout_s, max_bytes=self.max_answer_bytes)
        except transport.TransportError as exc:
            raise SourceError(f"{url}: {exc}", permanent=False) from exc

    def _check_url(self, url: str) -> None:
        """API requests carry the token: only to the site's own scheme and host."""
        if origin_of(url) != self.origin:
            raise SourceError(f"refusing to fetch {url!r}: not the website's address", permanent=True)

    def albums(self) -> Iterator[SourceAlbum]:
        """Every album the token's member may see, following `next` links."""
        url: str | None = f"{self.base_url}{ALBUMS_PATH}?limit=50&offset=0"
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise SourceError(f"album pages loop at {url}", permanent=True)
            seen.add(url)
            try:
                page = self._get_json(url)
            except _Refused as exc:
                if len(seen) == 1 and exc.status in (401, 403):
                    raise SourceError(
                        f"{exc} (the website refused the token: is it a member's token with scope "
                        "photos:read, and unexpired? Run `manage.py connect_thalia` to reconnect)",
                        permanent=True,
                    ) from exc
                raise
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise SourceError(f"{url}: not a page of albums", permanent=True)
            for item in page["results"]:
                album = self._album_from(item)
                if album is not None:
                    yield album
            next_url = page.get("next")
            url = urljoin(url, next_url) if isinstance(next_url, str) and next_url else None

    def _album_from(self, item: Any) -> SourceAlbum | None:
        if not isinstance(item, dict):
            logger.warning("skipping malformed album entry %r", item)
            return None
        slug, title = item.get("slug"), item.get("title")
        if not isinstance(slug, str) or not slug or not isinstance(title, str):
            logger.warning("skipping album without slug or title: %r", item)
            return None
        if item.get("accessible") is False:
            logger.info("album %s is not accessible with this token", slug)
            return None
        event = item.get("event")
        event_id = event if isinstance(event, int) and not isinstance(event, bool) else None
        return SourceAlbum(source_id=slug, title=title[:255], date=None, event_id=event_id)

    def event_date(self, event_id: int) -> dt.date | None:
        """The start date of an event, or None when the site will not tell.

        Raises DatesUnavailable when the site refuses events to this token
        (403: concrexit's events API needs the `events:read` scope), since
        then no album gets a date.
        """
        try:
            event = self._get_json(f"{self.base_url}{EVENTS_PATH}{int(event_id)}/")
            return dt.datetime.fromisoformat(event["start"]).date()
        except _Refused as exc:
            if exc.status == 403:
                raise DatesUnavailable(NO_EVENTS_READ) from exc
            logger.info("no date for event %s: %s", event_id, exc)
            return None
        except (SourceError, KeyError, TypeError, ValueError) as exc:
            logger.info("no date for event %s: %s", event_id, exc)
            return None

    def photos(self, album: SourceAlbum) -> AlbumListing:
        """All photos of an album with fresh signed URLs (one request).

        Malformed entries are skipped with a reason (keyed by their pk when
        they have one, so a stored photo is not taken for deleted).
        """
        detail = self._get_json(f"{self.base_url}{ALBUMS_PATH}{quote(album.source_id, safe='')}/")
        items = detail.get("photos") if isinstance(detail, dict) else None
        if not isinstance(items, list):
            raise SourceError("no photo list in the album's answer", permanent=True)
        photos: list[SourcePhoto] = []
        skipped: dict[str, str] = {}
        seen: set[str] = set()
        complete = True
        for index, item in enumerate(items):
            pk = item.get("pk") if isinstance(item, dict) else None
            key = str(pk) if _is_int(pk) else f"entry {index}"
            complete = complete and _is_int(pk)
            if key in seen:
                skipped[f"entry {index}"] = f"photo {key} listed twice"  # the first one counts
                continue
            seen.add(key)
            try:
                photos.append(self._photo_from(item))
            except ValueError as exc:
                logger.warning("album %s: skipping photo %s: %s", album.source_id, key, exc)
                skipped[key] = str(exc)
        return AlbumListing(photos=photos, skipped=skipped, complete=complete)

    def _photo_from(self, item: Any) -> SourcePhoto:
        if not isinstance(item, dict):
            raise ValueError("not an object")
        pk, files = item.get("pk"), item.get("file")
        if not _is_int(pk):
            raise ValueError("no integer pk")
        if not isinstance(files, dict):
            raise ValueError("no file URLs")
        urls = {v: files[v] for v in VARIANTS if isinstance(files.get(v), str)}
        if "full" not in urls:
            raise ValueError("no full-size file URL")
        for url in urls.values():
            if origin_of(url) not in self.file_origins:
                raise ValueError(f"file URL on an unexpected host: {origin_of(url)}")
        return SourcePhoto(source_id=str(pk), origin=urlsplit(urls["full"]).path, urls=urls)


NO_EVENTS_READ = (
    "albums get no date: the website refused its events API (HTTP 403), so Throwback's token lacks "
    "the events:read scope. Run `manage.py connect_thalia` again with events:read in "
    "THALIA_CONNECT_SCOPES (the default), or give THALIA_ACCESS_TOKEN that scope"
)


class _Refused(SourceError):
    """The site answered 401, 403 or 404: permanent for this URL; `status` says which."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, permanent=True)
        self.status = status


def origin_of(url: str) -> str:
    """'scheme://host[:port]' of a URL, lower-cased scheme."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def download(
    url: str,
    *,
    allowed_origins: tuple[str, ...],
    max_bytes: int,
    timeout_s: float,
    retries: int,
    retry_after_max_s: float = 60.0,
) -> bytes:
    """Fetch a signed file URL (no credentials), streaming with a size cap, within the deadline.

    Redirects are followed only to allowed hosts. A 403/404 (expired or
    tampered signature, deleted photo) is permanent for this URL.
    """
    session = _download_session(retries, retry_after_max_s)
    for _ in range(5):
        if origin_of(url) not in allowed_origins:
            raise SourceError(f"refusing to download from {origin_of(url)!r}", permanent=True)
        try:
            response = transport.get(session, url, timeout_s=timeout_s, max_bytes=max_bytes)
        except transport.TooLarge as exc:
            raise SourceError(f"file is over the {max_bytes:,} byte limit", permanent=True) from exc
        except transport.TransportError as exc:
            raise SourceError(f"download failed: {exc}", permanent=False) from exc
        if response.is_redirect:
            url = urljoin(url, response.headers.get("Location", ""))
            continue
        if response.status in (403, 404, 410):
            raise SourceError(f"download refused: HTTP {response.status}", permanent=True)
        if response.status != 200:
            raise SourceError(f"download failed: HTTP {response.status}", permanent=False)
        return response.body
    raise SourceError("too many redirects", permanent=True)


_SESSIONS: dict[tuple[int, float], requests.Session] = {}


def _download_session(retries: int, retry_after_max_s: float) -> requests.Session:
    """One session per process (worker processes each get their own)."""
    key = (retries, retry_after_max_s)
    if key not in _SESSIONS:
        _SESSIONS[key] = transport.make_session(retries, retry_after_max_s=retry_after_max_s)
    return _SESSIONS[key]
