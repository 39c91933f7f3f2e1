"""HTTP to the website with limits that hold against a slow or hostile server.

urllib3's time-outs bound each socket operation, not a request: a server that
sends one byte every few seconds keeps a request open for hours, and its
`Retry-After` is obeyed up to six hours per retry. Here:

- every attempt of a request (connect, send, headers and the whole body)
  ends at its deadline (`timeout_s`): a timer shuts the socket down, so a
  blocked read returns at once, whatever the server does (`Deadline`);
- `Retry-After` is obeyed up to `retry_after_max_s`, back-off up to the same;
- an answer is read as a stream and dropped beyond `max_bytes`, so a huge
  answer costs no memory (`get`);
- what went wrong is said in words ("timed out after 20 s", "connection
  refused"), not as a class name (`TransportError`).

With retries, a request takes at most (retries + 1) × timeout_s plus
retries × retry_after_max_s. Imports no Django code: encoding worker
processes download photo files through it (see `thalia.client.download`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

USER_AGENT = "Throwback/1.0 (+face search for association photos)"
CHUNK_BYTES = 64 * 1024
# An answer other than 200 is read up to this much (an error page's JSON), never refused for its size.
ERROR_BODY_BYTES = 64 * 1024


class TransportError(Exception):
    """No answer: the message says why in words; `timed_out` when a deadline or time-out ended it."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class TooLarge(TransportError):
    """The answer was longer than allowed; reading stopped there."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def is_redirect(self) -> bool:
        return self.status in (301, 302, 303, 307, 308) and "Location" in self.headers


def make_session(retries: int, *, retry_after_max_s: float) -> requests.Session:
    """A session whose connections keep `Deadline`s, retrying idempotent GETs on 429/5xx with back-off."""
    session = requests.Session()
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=0.5,
        backoff_max=retry_after_max_s,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        retry_after_max=int(retry_after_max_s),
        raise_on_status=False,
    )
    adapter = _Adapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def get(
    session: requests.Session,
    url: str,
    *,
    timeout_s: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """GET `url` (no redirects followed) within a deadline per attempt, its body read up to max_bytes.

    Raises TooLarge when a 200 answer is longer than max_bytes (declared or
    sent), TransportError when there is no answer.
    """
    return request(session, "GET", url, timeout_s=timeout_s, max_bytes=max_bytes, headers=headers)


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout_s: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
) -> Answer:
    """One request as `get` describes it, with any method (a POST is never retried)."""
    with _deadline(timeout_s) as deadline:
        try:
            response = session.request(
                method,
                url,
                headers=dict(headers or {}),
                data=data,
                timeout=timeout_s,
                stream=True,
                allow_redirects=False,
            )
            with response:
                limit = max_bytes if response.status_code == 200 else min(max_bytes, ERROR_BODY_BYTES)
                body = _read(response, limit, refuse=response.status_code == 200)
        except requests.RequestException as exc:
            raise TransportError(
                describe(exc, timeout_s=timeout_s, expired=deadline.expired),
                timed_out=deadline.expired or _timed_out(exc),
            ) from exc
    return Answer(response.status_code, response.headers, body)


def _read(response: requests.Response, limit: int, *, refuse: bool) -> bytes:
    """The body, streamed; beyond `limit` bytes: TooLarge (refuse) or cut there."""
    declared = response.headers.get("Content-Length", "")
    if refuse and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the answer is {int(declared):,} bytes, over the {limit:,} byte limit")
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            if refuse:
                raise TooLarge(f"the answer is over the {limit:,} byte limit")
            chunks.append(chunk[: len(chunk) - (size - limit)])
            break
        chunks.append(chunk)
    return b"".join(chunks)


def describe(exc: BaseException, *, timeout_s: float, expired: bool = False) -> str:
    """What a `requests` error means, in words."""
    if expired:
        return f"timed out after {timeout_s:g} s"
    causes = list(_causes(exc))
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused"
    if any(isinstance(cause, NameResolutionError | socket.gaierror) for cause in causes):
        return "the host name does not resolve"
    if _timed_out(exc):
        return f"timed out after {timeout_s:g} s"
    if any(isinstance(cause, requests.exceptions.SSLError) for cause in causes):
        return "the TLS connection failed"
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return "the connection broke off"
    return exc.__class__.__name__


def _timed_out(exc: BaseException) -> bool:
    # urllib3's NewConnectionError (refused, unreachable) is a ConnectTimeoutError for old callers' sake.
    return any(
        isinstance(cause, requests.Timeout | Urllib3Timeout | TimeoutError)
        and not isinstance(cause, NewConnectionError)
        for cause in _causes(exc)
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps: requests puts urllib3's MaxRetryError in args, which has a `reason`."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cause = todo.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        todo.extend([cause.__cause__, cause.__context__, getattr(cause, "reason", None)])
        todo.extend(arg for arg in cause.args if isinstance(arg, BaseException))


# --- the deadline -------------------------------------------------------------------------------
_current = threading.local()


class Deadline:
    """A time limit for each attempt of one request, kept by a timer that shuts the socket down.

    An attempt starts when its connection connects (HTTPS: before sending)
    or sends, and ends with the next attempt or when the request's `with`
    ends, so it covers the body read after the headers came back. A connect
    made while sending (plain HTTP) belongs to that attempt.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.sending_now = False
        self._connection: HTTPConnection | None = None
        # The attempt's socket, kept here: http.client lets go of a socket it
        # will close after the answer while the body is still being read from it.
        self._sock: socket.socket | None = None
        self._connecting = False  # connected, not yet sent: the send continues this attempt
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def connecting(self, connection: HTTPConnection) -> None:
        if not (self.sending_now and connection is self._connection):
            self._begin(connection)
            self._connecting = True

    def connected(self, sock: socket.socket | None) -> None:
        """The attempt's socket; a connect that ended after the deadline is shut at once."""
        with self._lock:
            self._sock = sock
        if self.expired:
            self._shut()

    def sending(self, connection: HTTPConnection) -> None:
        if not (self._connecting and connection is self._connection):
            self._begin(connection)
        self._connecting = False

    def _begin(self, connection: HTTPConnection) -> None:
        self.cancel()
        with self._lock:
            self.expired = False
            self._connection = connection
            self._sock = connection.sock
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
        self._shut()

    def _shut(self) -> None:
        with self._lock:
            sock = self._sock
        if sock is not None:
            # The plain socket's shutdown, also under TLS: the blocked read in
            # the other thread then sees the end of the stream (OSError: already closed).
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


@contextmanager
def _deadline(seconds: float) -> Iterator[Deadline]:
    deadline = Deadline(seconds)
    previous = getattr(_current, "deadline", None)
    _current.deadline = deadline
    try:
        yield deadline
    finally:
        deadline.cancel()
        _current.deadline = previous


class _DeadlineMixin:
    """Tells the thread's current Deadline when an attempt connects and sends."""

    timeout: Any
    sock: Any

    def connect(self) -> None:
        deadline: Deadline | None = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.connecting(self)  # type: ignore[arg-type]
        super().connect()  # type: ignore[misc]
        if deadline is not None:
            deadline.connected(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline: Deadline | None = getattr(_current, "deadline", None)
        if deadline is None:
            super().request(*args, **kwargs)  # type: ignore[misc]
            return
        deadline.sending(self)  # type: ignore[arg-type]
        deadline.sending_now = True
        try:
            super().request(*args, **kwargs)  # type: ignore[misc]
        finally:
            deadline.sending_now = False


class _HTTPConnection(_DeadlineMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    """requests' adapter with connection pools whose connections keep Deadlines."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
