"""gunicorn's settings for Throwback, read by a plain `gunicorn throwback.wsgi` (or `gunicorn`).

Why these (docs/deployment.md, "The web server"):
- `gthread` workers: a request that waits (a selfie upload without
  `Prefer: respond-async` waits for its analysis, a slow client sends its
  body) holds one thread, not a whole worker, so pages keep being served.
- The selfie encoder (`manage.py run_encoder`) runs beside the workers:
  started once gunicorn is ready, restarted when it dies, stopped with
  gunicorn. Web workers never load dlib; the encoder keeps its models loaded.
- A request body must arrive within THROWBACK_BODY_DEADLINE_SECONDS, so
  clients that dribble their bodies cannot hold every thread.

Environment (all optional): GUNICORN_BIND (127.0.0.1:8000), GUNICORN_WORKERS
(2), GUNICORN_THREADS (8), GUNICORN_TIMEOUT (120), THROWBACK_ENCODERS (1;
0 when encoders run elsewhere), THROWBACK_BODY_DEADLINE_SECONDS (60). Command
line options win over this file.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, not {value}")
    return value


wsgi_app = "throwback.wsgi"
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
worker_class = "gthread"
workers = _env_int("GUNICORN_WORKERS", 2, minimum=1)
threads = _env_int("GUNICORN_THREADS", 8, minimum=1)
timeout = _env_int("GUNICORN_TIMEOUT", 120, minimum=1)
graceful_timeout = 30
keepalive = 5
accesslog = "-"
# gunicorn would otherwise create its control socket under $HOME, which the
# Docker image's user does not have.
control_socket_disable = True

ENCODERS = _env_int("THROWBACK_ENCODERS", 1, minimum=0)
BODY_DEADLINE_S = _env_int("THROWBACK_BODY_DEADLINE_SECONDS", 60, minimum=1)
RESTART_DELAY_S = (1.0, 30.0)  # first and longest pause before restarting an encoder that died
STABLE_AFTER_S = 60.0  # an encoder that ran this long before it died is restarted after the first pause
SUPERVISE_EVERY_S = 1.0

log = logging.getLogger("gunicorn.error")


class _Encoders:
    """The encoder processes of one gunicorn master, and the thread that keeps them running."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.delays = [RESTART_DELAY_S[0]] * count
        self.started = [0.0] * count
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._supervise, name="encoder-supervisor", daemon=True)

    def start(self) -> None:
        for slot in range(self.count):
            self._spawn(slot)
        self.thread.start()

    def _spawn(self, slot: int) -> None:
        command = [sys.executable, str(HERE / "manage.py"), "run_encoder", "--parent-pid", str(os.getpid())]
        # Its own session: a Ctrl-C or a signal to gunicorn's process group reaches the
        # master, whose on_exit stops the encoder after the workers (and never restarts it then).
        process = subprocess.Popen(command, cwd=HERE, start_new_session=True)  # noqa: S603 - our manage.py
        self.processes[slot] = process
        self.started[slot] = time.monotonic()
        log.info("Started selfie encoder (pid: %s)", process.pid)

    def _supervise(self) -> None:
        # gunicorn's arbiter reaps every child, ours too; Popen.poll() then
        # reports the encoder ended (status unknown), which is all we need.
        while not self.stopping.wait(SUPERVISE_EVERY_S):
            with self.lock:
                for slot, process in enumerate(self.processes):
                    if self.stopping.is_set() or process is None or process.poll() is None:
                        continue
                    if time.monotonic() - self.started[slot] > STABLE_AFTER_S:
                        self.delays[slot] = RESTART_DELAY_S[0]
                    log.error(
                        "Selfie encoder (pid: %s) ended; restarting it in %.0f s",
                        process.pid,
                        self.delays[slot],
                    )
                    if self.stopping.wait(self.delays[slot]):
                        return
                    self._spawn(slot)
                    # An encoder that keeps dying at start (no database?) is retried more slowly.
                    self.delays[slot] = min(self.delays[slot] * 2, RESTART_DELAY_S[1])

    def restart(self) -> None:
        """Ask every encoder to stop after its current selfie; `_supervise` starts each again at once."""
        with self.lock:
            for slot, process in enumerate(self.processes):
                if process is not None and process.poll() is None:
                    self.delays[slot] = RESTART_DELAY_S[0]
                    process.send_signal(signal.SIGTERM)
                    log.info("Reload: selfie encoder (pid: %s) restarts on the new code", process.pid)

    def stop(self, grace_s: float) -> None:
        self.stopping.set()
        with self.lock:
            running = [p for p in self.processes if p is not None and p.poll() is None]
            for process in running:
                process.send_signal(signal.SIGTERM)  # finishes the selfie it is analysing
            deadline = time.monotonic() + grace_s
            for process in running:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()  # its upload is queued again after the lease
                    process.wait()


def _supervisor(server: Any) -> _Encoders | None:
    """The encoders' supervisor, kept on the arbiter: a reload (SIGHUP) runs this file anew as a new
    module, whose globals would not know the encoders started before."""
    encoders: _Encoders | None = getattr(server, "throwback_encoders", None)
    return encoders


def when_ready(server: Any) -> None:
    """Start the selfie encoders once the master is listening."""
    if ENCODERS and _supervisor(server) is None:
        server.throwback_encoders = _Encoders(ENCODERS)
        server.throwback_encoders.start()


def on_reload(server: Any) -> None:
    """SIGHUP: the encoders finish their selfie and stop; the supervisor starts them on the new code."""
    encoders = _supervisor(server)
    if encoders is not None:
        encoders.restart()


def on_exit(server: Any) -> None:
    """Stop the encoders with gunicorn (SIGTERM, then SIGKILL after the graceful timeout)."""
    encoders = _supervisor(server)
    if encoders is not None:
        encoders.stop(grace_s=graceful_timeout)


class _BodyDeadline:
    """Bounds the reads of one connection's socket while a request is being served.

    Installed once per connection (its unreader lives as long as the
    keep-alive connection); `deadline` is set by pre_request and cleared by
    post_request, so the next request's headers are read as gunicorn reads
    them, without a limit of ours.
    """

    def __init__(self, sock: socket.socket, read: Any) -> None:
        self.sock, self.read = sock, read
        self.deadline: float | None = None

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.deadline is None:
            data: bytes = self.read(size_hint)
            return data
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"request body not received within {BODY_DEADLINE_S} s")
        self.sock.settimeout(remaining)
        try:
            data = self.read(size_hint)
        finally:
            self.sock.settimeout(None)
        return data


def pre_request(worker: Any, req: Any) -> None:
    """Give the request's body a total deadline (BODY_DEADLINE_S from now).

    gunicorn reads a body with blocking recv() calls and no time limit, so a
    client sending one byte a second holds a thread for as long as it likes.
    Each recv() of this request now waits at most until the deadline; past it
    the read raises TimeoutError, which Django reports as an unreadable body
    (the request is refused, the thread freed). The socket is blocking again
    after every read, so writing the response is not limited.
    """
    unreader = getattr(req, "unreader", None)
    sock = getattr(unreader, "sock", None)
    if unreader is None or not isinstance(sock, socket.socket):
        return
    bounded = getattr(unreader, "throwback_deadline", None)
    if bounded is None:
        bounded = _BodyDeadline(sock, unreader.chunk)
        unreader.chunk = bounded.chunk
        unreader.throwback_deadline = bounded
    bounded.deadline = time.monotonic() + BODY_DEADLINE_S


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """Lift the body deadline once the request is answered (keep-alive: the next one reads freely)."""
    bounded = getattr(getattr(req, "unreader", None), "throwback_deadline", None)
    if bounded is not None:
        bounded.deadline = None
