"""A fake of concrexit's photos API, served over real HTTP on 127.0.0.1.

The album importer talks to concrexit (the study association's DRF +
django-oauth-toolkit website) with plain HTTP, so tests run it against this
server instead of mocks: real sockets, real status codes, real signed media
URLs that expire. It copies the behaviour the importer depends on:

* every ``/api/`` request needs ``Authorization: Bearer <token>``; without a
  valid one the answer is 403 (concrexit says 403, not 401);
* a valid token also needs the endpoint's scope: ``photos:read`` for the
  albums, ``events:read`` for an event; without it the answer is 403
  "You do not have permission…" (``token_scopes``; the fixed ``token`` has both);
* ``/api/v2/photos/albums/`` uses DRF ``LimitOffsetPagination`` with absolute
  ``next``/``previous`` links; hidden albums are not listed, albums the member
  may not open are listed with ``accessible: false``;
* album detail is 404 for hidden/unknown albums, 403 for inaccessible ones;

Where each behaviour comes from is named next to it: concrexit at commit
116602b (svthalia/concrexit, ``website/…``) with django-oauth-toolkit 2.4.0,
the version its ``uv.lock`` pins.
* photo files live under ``/media/private/photos/`` and need no auth header,
  only a timestamped HMAC ``sig`` query parameter that expires after
  ``url_max_age_s`` seconds of the server's clock (``clock_offset_s`` moves
  that clock so tests need not sleep).

Fault injection (``fail``, ``throttle``, ``down``, ``delay_s``) lets tests
exercise retries and error handling; ``slow_loris`` and ``endless_answer``
change how an answer is sent (a byte at a time; hundreds of megabytes).
Only Pillow is needed; Django settings are not touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

from PIL import Image

#: Longest side in pixels per variant; ``None`` means original size (JPEG).
VARIANT_SIZES: dict[str, int | None] = {
    "full": None,
    "small": 300,
    "medium": 1200,
    "large": 1920,
}
#: concrexit renders datetimes in the association's local time zone.
SITE_TZ = ZoneInfo("Europe/Amsterdam")
#: How long an event lasts; ``add_event`` only takes a start.
EVENT_DURATION = dt.timedelta(hours=2)

NOT_AUTHENTICATED = "Authentication credentials were not provided."
PERMISSION_DENIED = "You do not have permission to perform this action."
NOT_FOUND = "Not found."
#: The scopes the fixed importer token carries (``connect_thalia``'s default).
DEFAULT_SCOPES = frozenset({"photos:read", "events:read"})

_SLUG_RE = re.compile(r"[-a-zA-Z0-9_]+")
_FILE_RE = re.compile(r"/media/private/photos/[^/]+/(\d+)_\d+(?:_(small|medium|large))?\.(?:jpg|webp)")
_ALBUM_RE = re.compile(r"/api/v2/photos/albums/([^/]+)/")
_EVENT_RE = re.compile(r"/api/v2/events/(\d+)/")

_Response = tuple[int, str, bytes]  # status, content type, body
_T = TypeVar("_T", "_Fault", "_Pace")


def _json(status: int, payload: Any) -> _Response:
    return status, "application/json", json.dumps(payload).encode()


def _html(status: int, text: str) -> _Response:
    return (
        status,
        "text/html; charset=utf-8",
        f"<html><body><h1>{text}</h1></body></html>".encode(),
    )


def _read(data: Path | bytes) -> bytes:
    """Load and check an image, so a broken test fixture fails at setup, not mid-download."""
    raw = data.read_bytes() if isinstance(data, Path) else bytes(data)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.verify()
    except Exception as exc:  # Pillow raises many exception types
        raise ValueError(f"not an image Pillow can read: {exc}") from exc
    return raw


def _render(original: bytes, variant: str) -> bytes:
    """``full`` is the original re-encoded as JPEG; others are WebP scaled (up or down) to a longest side."""
    with Image.open(io.BytesIO(original)) as img:
        rgb = img.convert("RGB")
    out = io.BytesIO()
    size = VARIANT_SIZES[variant]
    if size is None:
        rgb.save(out, "JPEG", quality=90)
    else:
        scale = size / max(rgb.size)
        new_size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb.resize(new_size, Image.Resampling.LANCZOS).save(out, "WEBP", quality=80)
    return out.getvalue()


def _limit_param(value: str | None, default: int, *, allow_zero: bool) -> int:
    """DRF's ``_positive_int``: garbage or out-of-range values fall back to the default."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    if number < 0 or (number == 0 and not allow_zero):
        return default
    return number


@dataclass
class _Photo:
    pk: int
    album: str
    data: bytes
    version: int = 0  # bumped by replace_photo, part of the file name
    num_likes: int = 0
    liked: bool = False


@dataclass
class _Album:
    slug: str
    title: str
    photo_pks: list[int]
    event: int | None
    accessible: bool
    hidden: bool
    shareable: bool


@dataclass
class _Fault:
    prefix: str
    status: int
    remaining: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pace:
    """Send the answer one byte per `interval_s` (after the headers, or with them)."""

    prefix: str
    interval_s: float
    remaining: int
    headers_too: bool


@dataclass
class _Endless:
    """A 200 JSON answer of `total_bytes`, generated as it is sent, without a Content-Length."""

    prefix: str
    total_bytes: int


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (a free port) whose handler answers through `fake`."""

    daemon_threads = True  # a slow (delay_s) request must not block stop()

    def __init__(self, fake: Any, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.fake = fake


class ServedOnLoopback:
    """A fake served by a LoopbackServer in a thread: start()/stop() or a context manager.

    Subclasses name their request handler in `handler`.
    """

    handler: type[BaseHTTPRequestHandler]
    base_url: str = ""
    _httpd: LoopbackServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._httpd = LoopbackServer(self, self.handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    """Thin adapter: all behaviour lives in ``FakeConcrexit._respond``."""

    # HTTP/1.0 closes the connection after each response, so no pooled
    # keep-alive connection can outlive stop() and keep getting answers.
    protocol_version = "HTTP/1.0"
    server: LoopbackServer

    def _dispatch(self) -> None:
        fake = self.server.fake
        endless = fake._take_endless(self.path)
        if endless is not None:
            self._send_endless(fake, endless)
            return
        status, content_type, body = fake._respond(self.command, self.path, self.headers.get("Authorization"))
        headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **fake._reply_headers()}
        reason = self.responses.get(status, ("",))[0]
        head = f"{self.protocol_version} {status} {reason}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        pace = fake._take_pace(self.path)
        try:
            if pace is None:
                self.wfile.write(head.encode("latin-1") + body)
                return
            if not pace.headers_too:
                self.wfile.write(head.encode("latin-1"))
            for byte in (head.encode("latin-1") if pace.headers_too else b"") + body:
                time.sleep(pace.interval_s)
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # client gave up (e.g. its timeout was shorter than delay_s)

    def _send_endless(self, fake: FakeConcrexit, endless: _Endless) -> None:
        entry = json.dumps({"slug": "padding", "title": "Padding", "accessible": True, "event": None})
        block = (entry + ", ").encode() * (64 * 1024 // (len(entry) + 2))
        try:
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
            self.wfile.write(b'{"count": 1, "next": null, "previous": null, "results": [')
            while fake.sent_bytes < endless.total_bytes:
                self.wfile.write(block)
                with fake._lock:
                    fake.sent_bytes += len(block)
            self.wfile.write(entry.encode() + b"]}")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class FakeConcrexit(ServedOnLoopback):
    """Fake concrexit photos API. Use as a context manager or call start()/stop()."""

    handler = _Handler
    page_size: int = 50

    def __init__(self) -> None:
        self.token: str = secrets.token_urlsafe(24)
        self.tokens: set[str] = {self.token}
        # The scopes granted with a token; a token not listed here has DEFAULT_SCOPES.
        self.token_scopes: dict[str, frozenset[str]] = {}
        self.url_max_age_s: float = 3 * 3600
        self.clock_offset_s: float = 0.0
        self.requests: list[tuple[str, str]] = []
        self.down: bool = False
        self.delay_s: float = 0.0
        self._key = secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._events: dict[int, tuple[str, dt.datetime]] = {}
        self._albums: dict[str, _Album] = {}  # insertion order = list order
        self._photos: dict[int, _Photo] = {}
        self._next_pk = 1
        self._faults: list[_Fault] = []
        self._paces: list[_Pace] = []
        self._endless: list[_Endless] = []
        self._reply = threading.local()  # headers of the fault being answered, per handler thread
        self.sent_bytes = 0  # of endless answers, counted as they are written
        self._cache: dict[tuple[int, int, str], bytes] = {}

    # -- data --------------------------------------------------------------

    def add_event(self, pk: int, title: str, start: dt.datetime) -> None:
        """Naive ``start`` values are taken as Europe/Amsterdam local time, like Django's TIME_ZONE."""
        if start.tzinfo is None:
            start = start.replace(tzinfo=SITE_TZ)
        with self._lock:
            self._events[pk] = (title, start)

    def add_album(
        self,
        slug: str,
        title: str,
        photos: list[Path | bytes],
        *,
        event: int | None = None,
        accessible: bool = True,
        hidden: bool = False,
        shareable: bool = False,
    ) -> list[int]:
        """Add an album; returns the new photo pks (globally unique, increasing).

        ``event`` need not exist, so tests can model a dangling event reference.
        """
        if not _SLUG_RE.fullmatch(slug):
            raise ValueError(f"invalid slug: {slug!r}")
        originals = [_read(p) for p in photos]
        with self._lock:
            if slug in self._albums:
                raise ValueError(f"duplicate album slug: {slug!r}")
            pks = list(range(self._next_pk, self._next_pk + len(originals)))
            self._next_pk += len(originals)
            for pk, data in zip(pks, originals, strict=True):
                self._photos[pk] = _Photo(pk=pk, album=slug, data=data)
            self._albums[slug] = _Album(slug, title, list(pks), event, accessible, hidden, shareable)
        return pks

    def remove_photo(self, pk: int) -> None:
        """Delete a photo: it leaves its album and all its URLs answer 404."""
        with self._lock:
            photo = self._photos.pop(pk)
            self._albums[photo.album].photo_pks.remove(pk)
            self._drop_cache(pk)

    def replace_photo(self, pk: int, data: Path | bytes) -> None:
        """New content under the same pk; like concrexit's new stored file, the file name changes too."""
        original = _read(data)
        with self._lock:
            photo = self._photos[pk]
            photo.data = original
            photo.version += 1
            self._drop_cache(pk)

    def set_likes(self, pk: int, num_likes: int, liked: bool = False) -> None:
        """Set the like counters reported for a photo (default 0 / False)."""
        with self._lock:
            self._photos[pk].num_likes = num_likes
            self._photos[pk].liked = liked

    def photo_bytes(self, pk: int) -> bytes:
        """The original bytes as added (or last replaced), not the re-encoded ``full`` variant."""
        with self._lock:
            return self._photos[pk].data

    def file_url(self, pk: int, variant: str = "full") -> str:
        """A freshly signed absolute URL, exactly as the API would hand it out now."""
        if variant not in VARIANT_SIZES:
            raise ValueError(f"unknown variant: {variant!r}")
        if not self.base_url:
            raise RuntimeError("call start() first")
        with self._lock:
            return self._signed_url(self._photos[pk], variant)

    # -- fault injection ---------------------------------------------------

    def fail(
        self,
        path_prefix: str,
        status: int,
        times: int = 1,
        body: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path (with query) starts with ``path_prefix`` with this instead.

        Checked before auth and routing, so it also works for file URLs and
        can fake a 200 with a broken body. Earlier ``fail`` calls win.
        """
        if body is None:
            body = json.dumps({"detail": f"Injected failure ({status})."}).encode()
            content_type = "application/json"
        with self._lock:
            self._faults.append(_Fault(path_prefix, status, times, body, content_type, dict(headers or {})))

    def throttle(self, path_prefix: str, wait_s: int, times: int = 1) -> None:
        """The next ``times`` requests are throttled as concrexit throttles a member over 90 a minute.

        concrexit limits each user with DRF's UserRateThrottle (website/thaliawebsite/settings.py:888-896,
        website/thaliawebsite/api/throttling.py:22-38); DRF answers 429 with ``Retry-After`` in whole
        seconds (rest_framework/views.py:90-91 at djangorestframework 3.15.2, the version concrexit's
        uv.lock pins) and says when in the detail (rest_framework/exceptions.py:226-243).
        """
        unit = "second" if wait_s == 1 else "seconds"
        body = json.dumps({"detail": f"Request was throttled. Expected available in {wait_s} {unit}."})
        self.fail(path_prefix, 429, times, body.encode(), headers={"Retry-After": str(wait_s)})

    def slow_loris(
        self, path_prefix: str, interval_s: float, times: int = 1, headers_too: bool = False
    ) -> None:
        """The next ``times`` answers to paths starting with the prefix are sent one byte per ``interval_s``:
        the body after prompt headers, or (``headers_too``) the status line and headers as well."""
        with self._lock:
            self._paces.append(_Pace(path_prefix, interval_s, times, headers_too))

    def endless_answer(self, path_prefix: str, total_bytes: int) -> None:
        """Every request to paths starting with the prefix gets a 200 JSON answer of ``total_bytes``
        (a page of padding albums), generated while it is sent and counted in ``sent_bytes``."""
        with self._lock:
            self._endless.append(_Endless(path_prefix, total_bytes))

    # -- request handling --------------------------------------------------

    def _respond(self, method: str, raw_path: str, authorization: str | None) -> _Response:
        with self._lock:
            self.requests.append((method, raw_path))
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        if self.down:
            return _html(503, "503 Service Unavailable")
        fault = self._take_fault(raw_path)
        if fault is not None:
            self._reply.headers = fault.headers
            return fault.status, fault.content_type, fault.body
        url = urlsplit(raw_path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}  # last wins, as in Django
        if url.path.startswith("/media/"):
            return self._serve_file(method, url.path, query.get("sig"))
        if not url.path.startswith("/api/"):
            return _html(404, "Not Found")
        token = self._token_of(authorization)
        if token is None:
            # REST_FRAMEWORK lists SessionAuthentication first (website/thaliawebsite/settings.py:879-882),
            # which has no WWW-Authenticate challenge, so DRF answers NotAuthenticated with 403, not 401.
            return _json(403, {"detail": NOT_AUTHENTICATED})
        if method != "GET":
            return _json(405, {"detail": f'Method "{method}" not allowed.'})
        with self._lock:
            if url.path == "/api/v2/photos/albums/":
                # AlbumListView: required_scopes = ["photos:read"] (website/photos/api/v2/views.py:35-38).
                return self._scoped(token, "photos:read") or self._album_list(query)
            if match := _ALBUM_RE.fullmatch(url.path):
                # AlbumDetailView: the same scope (website/photos/api/v2/views.py:47-50).
                return self._scoped(token, "photos:read") or self._album_detail(match[1])
            if match := _EVENT_RE.fullmatch(url.path):
                # EventDetailView: required_scopes = ["events:read"] (website/events/api/v2/views.py:79-80).
                return self._scoped(token, "events:read") or self._event(int(match[1]))
        return _json(404, {"detail": NOT_FOUND})

    def _scoped(self, token: str, scope: str) -> _Response | None:
        """403 when the token lacks the view's scope, else None (go on).

        IsAuthenticatedOrTokenHasScope lets an OAuth2-authenticated request in only through
        TokenHasScope (django-oauth-toolkit oauth2_provider/contrib/rest_framework/permissions.py:115-122),
        which is False for a token without the scope (permissions.py:29-46; concrexit leaves
        ERROR_RESPONSE_WITH_SCOPES off, so the body is DRF's plain PermissionDenied).
        """
        if scope in self.token_scopes.get(token, DEFAULT_SCOPES):
            return None
        return _json(403, {"detail": PERMISSION_DENIED})

    def _reply_headers(self) -> dict[str, str]:
        """Headers of the fault just answered in this thread (and forget them)."""
        headers: dict[str, str] = getattr(self._reply, "headers", {})
        self._reply.headers = {}
        return headers

    def _take_pace(self, raw_path: str) -> _Pace | None:
        return self._take(self._paces, raw_path)

    def _take_endless(self, raw_path: str) -> _Endless | None:
        with self._lock:
            return next((e for e in self._endless if raw_path.startswith(e.prefix)), None)

    def _take_fault(self, raw_path: str) -> _Fault | None:
        return self._take(self._faults, raw_path)

    def _take(self, pending: list[_T], raw_path: str) -> _T | None:
        """The first of `pending` whose prefix the path starts with, one use of it spent."""
        with self._lock:
            for item in pending:
                if raw_path.startswith(item.prefix):
                    item.remaining -= 1
                    if item.remaining <= 0:
                        pending.remove(item)
                    return item
        return None

    def _token_of(self, authorization: str | None) -> str | None:
        """The bearer token of a request when it is one the site accepts, else None."""
        parts = (authorization or "").split()
        if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1] in self.tokens:
            return parts[1]
        return None

    def _album_list(self, query: dict[str, str]) -> _Response:
        albums = [album for album in self._albums.values() if not album.hidden]
        limit = _limit_param(query.get("limit"), self.page_size, allow_zero=False)
        offset = _limit_param(query.get("offset"), 0, allow_zero=True)
        count = len(albums)
        next_url = self._page_url(query, limit, offset + limit) if offset + limit < count else None
        previous_url = self._page_url(query, limit, max(offset - limit, 0)) if offset > 0 else None
        results = [self._album_json(album) for album in albums[offset : offset + limit]]
        return _json(
            200,
            {
                "count": count,
                "next": next_url,
                "previous": previous_url,
                "results": results,
            },
        )

    def _page_url(self, query: dict[str, str], limit: int, offset: int) -> str:
        """Like DRF: keep other params, set limit, drop offset when it would be 0, sort keys."""
        params = {**query, "limit": str(limit), "offset": str(offset)}
        if offset == 0:
            del params["offset"]
        return f"{self.base_url}/api/v2/photos/albums/?{urlencode(sorted(params.items()))}"

    def _album_detail(self, slug: str) -> _Response:
        album = self._albums.get(slug)
        if album is None or album.hidden:
            return _json(404, {"detail": NOT_FOUND})
        if not album.accessible:
            # AlbumDetailView.retrieve raises PermissionDenied when the member may not open the album
            # (website/photos/api/v2/views.py:53-56, photos/services.py:26-36).
            return _json(403, {"detail": PERMISSION_DENIED})
        payload = self._album_json(album)
        payload["photos"] = [self._photo_json(self._photos[pk]) for pk in sorted(album.photo_pks)]
        return _json(200, payload)

    def _album_json(self, album: _Album) -> dict[str, Any]:
        cover = self._photos[min(album.photo_pks)] if album.photo_pks else None
        return {
            "slug": album.slug,
            "title": album.title,
            "accessible": album.accessible,
            "shareable": album.shareable,
            "cover": self._photo_json(cover) if cover else None,
            "event": album.event,
        }

    def _photo_json(self, photo: _Photo) -> dict[str, Any]:
        return {
            "pk": photo.pk,
            "file": {
                variant: self._signed_url(photo, variant) for variant in ("full", "small", "medium", "large")
            },
            "num_likes": photo.num_likes,
            "liked": photo.liked,
        }

    def _event(self, pk: int) -> _Response:
        if pk not in self._events:
            return _json(404, {"detail": NOT_FOUND})
        title, start = self._events[pk]
        return _json(
            200,
            {
                "pk": pk,
                "title": title,
                "description": "",
                "location": "",
                "start": start.astimezone(SITE_TZ).isoformat(),
                "end": (start + EVENT_DURATION).astimezone(SITE_TZ).isoformat(),
            },
        )

    # -- media -------------------------------------------------------------

    @staticmethod
    def _file_path(photo: _Photo, variant: str) -> str:
        stem = f"/media/private/photos/{photo.album}/{photo.pk}_{photo.version}"
        return f"{stem}.jpg" if variant == "full" else f"{stem}_{variant}.webp"

    def _now(self) -> float:
        return time.time() + self.clock_offset_s

    def _mac(self, path: str, millis: int) -> str:
        return hmac.new(self._key, f"{path}\n{millis}".encode(), hashlib.sha256).hexdigest()

    def _signed_url(self, photo: _Photo, variant: str) -> str:
        path = self._file_path(photo, variant)
        millis = int(self._now() * 1000)
        return f"{self.base_url}{path}?sig={millis}.{self._mac(path, millis)}"

    def _signature_ok(self, path: str, sig: str | None) -> bool:
        """``sig`` is ``<signing time in ms>.<hmac of path and time>``; expired after ``url_max_age_s``."""
        millis, _, mac = (sig or "").partition(".")
        if not (millis.isascii() and millis.isdigit()):
            return False
        if not hmac.compare_digest(mac.encode(), self._mac(path, int(millis)).encode()):
            return False
        return self._now() - int(millis) / 1000 <= self.url_max_age_s

    def _serve_file(self, method: str, path: str, sig: str | None) -> _Response:
        if not self._signature_ok(path, sig):
            return _html(403, "403 Forbidden")
        if method != "GET":
            return _html(405, "405 Method Not Allowed")
        match = _FILE_RE.fullmatch(path)
        variant = (match[2] or "full") if match else "full"
        with self._lock:
            photo = self._photos.get(int(match[1])) if match else None
            if photo is None or self._file_path(photo, variant) != path:
                return _html(404, "404 Not Found")  # removed, replaced, or never existed
            key = (photo.pk, photo.version, variant)
            original = photo.data
            cached = self._cache.get(key)
        if cached is None:
            cached = _render(original, variant)  # outside the lock: rendering 1920px WebP is slow
            with self._lock:
                if photo.version == key[1] and photo.pk in self._photos:
                    self._cache[key] = cached
        content_type = "image/jpeg" if variant == "full" else "image/webp"
        return 200, content_type, cached

    def _drop_cache(self, pk: int) -> None:
        for key in [key for key in self._cache if key[0] == pk]:
            del self._cache[key]
