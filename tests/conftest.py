"""Shared fixtures: the real photos, a fake concrexit on 127.0.0.1, members.

A guard refuses every network connection beyond the loopback interface, so
no test can reach the internet by accident.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_concrexit import FakeConcrexit
from tests.smtp import SmtpServer

REPO = Path(__file__).resolve().parents[1]
FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
EXAMPLES = FACES_DIR / "face_recognition_examples"


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """Fail any test that connects beyond 127.0.0.1 / ::1."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise AssertionError(f"test tried to connect to {address!r}: only loopback is allowed")
        return original(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign]
    yield
    socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with an empty cache (remembered refresh failures, …)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """../shared/faces: the labelled real photos (never copied into the repo)."""
    if not (FACES_DIR / "README.md").is_file():
        pytest.fail(f"labelled photos not found at {FACES_DIR}; set THROWBACK_FACES_DIR")
    return FACES_DIR


@pytest.fixture
def examples(faces_dir: Path) -> Path:
    """face_recognition's example photos (Obama, Biden, Kit Harington, …)."""
    return faces_dir / "face_recognition_examples"


def make_album_folder(root: Path, albums: dict[str, list[Path]]) -> Path:
    """A photo folder for `import_albums --folder`: one sub-folder per album,
    files copied from the shared photos (in tmp, never in the repo)."""
    for name, files in albums.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copyfile(file, folder / file.name)
    return root


@contextlib.contextmanager
def outer_timeout(seconds: float) -> Iterator[None]:
    """Fail the test instead of hanging when the block has not ended after `seconds`.

    A generous bound for code that must stop by itself (never a speed
    assertion): SIGALRM interrupts even a blocked socket read. Main thread only.
    """

    def expire(signum: int, frame: object) -> None:
        pytest.fail(f"still running after {seconds:g} s (the outer time-out)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def settings_error(**environment: str) -> str:
    """stderr of loading the settings with this environment, which must stop start-up."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "throwback.settings", **environment}
    command = [sys.executable, "-c", "from django.conf import settings; settings.DEBUG"]
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    return result.stderr


def import_process_env(media_root: Path, *, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a `manage.py import_albums` in its own process.

    By default on this test's database (so from transactional tests only).
    """
    if database_url is None:
        from django.db import connection

        s = connection.settings_dict
        database_url = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "throwback.settings",
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media_root),
        "SECRET_KEY": "test",
        # As tests/settings.py: the process matches as the test that compares with it.
        "THROWBACK_LEARNED_PER_SELFIE": "0",
        **extra,
    }


def import_process_command(root: Path, workers: int = 1) -> list[str]:
    """`manage.py import_albums` of a folder of albums, as an operator runs it."""
    return [
        sys.executable,
        str(REPO / "manage.py"),
        "import_albums",
        "--folder",
        str(root),
        "--workers",
        str(workers),
        "--no-progress",
    ]


def use_website(settings, fake: FakeConcrexit) -> None:  # type: ignore[no-untyped-def]
    """Point Throwback at a running fake website: its URL and token, no retries, a short timeout."""
    settings.THALIA_API_URL = fake.base_url
    settings.THALIA_ACCESS_TOKEN = fake.token
    settings.THALIA_RETRIES = 0
    settings.THALIA_TIMEOUT_SECONDS = 5


@pytest.fixture
def fake_concrexit(settings) -> Iterator[FakeConcrexit]:  # type: ignore[no-untyped-def]
    """A running fake of the website's photos API, with Throwback pointed at it."""
    with FakeConcrexit() as fake:
        use_website(settings, fake)
        yield fake


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Media storage in this test's own temporary folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


# THROWBACK_SITE_URL in the mail tests: links in mails start with it.
SITE = "https://throwback.example.org"


def use_mail_server(settings, port: int) -> None:  # type: ignore[no-untyped-def]
    """Send Throwback's mails over SMTP to 127.0.0.1:port (nothing need listen there)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.THROWBACK_SITE_URL = SITE
    settings.DEFAULT_FROM_EMAIL = "Throwback <throwback@example.org>"


@pytest.fixture
def smtp(settings) -> Iterator[SmtpServer]:  # type: ignore[no-untyped-def]
    """A real SMTP server on 127.0.0.1 (aiosmtpd, tests/smtp.py), Throwback's mail settings pointed at it."""
    with SmtpServer() as server:
        use_mail_server(settings, server.port)
        yield server
