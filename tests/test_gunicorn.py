"""The production server as deployed: `gunicorn throwback.wsgi` with gunicorn.conf.py.

A real gunicorn on a free loopback port (gthread workers, the selfie encoder
started and supervised by the master), on this test's database. Asserted:
web workers never map dlib while the encoder does, a killed encoder is
replaced, and clients that dribble their request bodies cannot hold every
thread (issue 17, item 4).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from members.models import Member, ReferenceFace
from tests.conftest import REPO
from tests.factories import MemberFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"
WAIT_S = 240  # generous: start-up and dlib's model load on a busy machine
THREADS = 4
WORKERS = 2
BODY_DEADLINE_S = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(media_root: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a production process on this test's database and media folder."""
    s = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "throwback.settings",
        "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
        "MEDIA_ROOT": str(media_root),
        "SECRET_KEY": "gunicorn-test-secret-key",
        "THROWBACK_DATA_DIR": str(tmp_path / "data"),
        "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "THROWBACK_LEARNED_PER_SELFIE": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def children(pid: int) -> dict[int, str]:
    """The running child processes of `pid`: their ids and command lines."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ids = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in ids:
            try:
                found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except FileNotFoundError:
                continue
    return found


def maps_dlib(pid: int) -> bool:
    """Whether the process has dlib's compiled module mapped (face_recognition imported)."""
    return "_dlib_pybind11" in Path(f"/proc/{pid}/maps").read_text()


@dataclass
class Server:
    base: str
    process: subprocess.Popen[str]

    def encoders(self) -> list[int]:
        return [pid for pid, command in children(self.process.pid).items() if "run_encoder" in command]

    def workers(self) -> list[int]:
        return [pid for pid, command in children(self.process.pid).items() if "run_encoder" not in command]


def wait_until_serving(base: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/accounts/login/", timeout=30).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail("gunicorn did not start")


@pytest.fixture
def server(media_root: Path, tmp_path: Path) -> Iterator[Server]:
    """`gunicorn throwback.wsgi` as deployed (no options but the address), two workers of four threads."""
    port = free_port()
    env = server_env(
        media_root,
        tmp_path,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(WORKERS),
        GUNICORN_THREADS=str(THREADS),
        THROWBACK_BODY_DEADLINE_SECONDS=str(BODY_DEADLINE_S),
        THROWBACK_ENCODER_LEASE_SECONDS="5",
    )
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "throwback.wsgi"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}")
        yield Server(f"http://127.0.0.1:{port}", process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def logged_in(base: str, username: str) -> requests.Session:
    """A member logged in through the login form of the real server."""
    member = MemberFactory(username=username)
    # The server runs the production hashers, not the tests' MD5.
    Member.objects.filter(pk=member.pk).update(
        password=PBKDF2PasswordHasher().encode(PASSWORD, "gunicorntestsalt", iterations=1000)
    )
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=60)
    response = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": PASSWORD},
        headers=csrf(session, base),
        allow_redirects=False,
        timeout=60,
    )
    assert response.status_code == 302, response.text[:300]
    return session


def csrf(session: requests.Session, base: str) -> dict[str, str]:
    return {"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": base + "/"}


def upload(session: requests.Session, base: str, path: Path) -> requests.Response:
    return session.post(
        f"{base}/api/references/",
        files={"image": (path.name, path.read_bytes())},
        headers=csrf(session, base),
        timeout=WAIT_S,
    )


def test_web_workers_never_load_dlib_while_the_encoder_does(server: Server, examples: Path) -> None:
    session = logged_in(server.base, "barack")

    response = upload(session, server.base, examples / "obama.jpg")

    assert response.status_code == 201, response.text[:300]
    assert ReferenceFace.objects.selfies().filter(pk=response.json()["id"]).exists()
    assert len(server.encoders()) == 1
    assert maps_dlib(server.encoders()[0])
    assert len(server.workers()) == WORKERS
    assert [maps_dlib(pid) for pid in server.workers()] == [False] * WORKERS


def test_gunicorn_restarts_an_encoder_that_died(server: Server, examples: Path) -> None:
    session = logged_in(server.base, "barack")
    (first,) = server.encoders()

    os.kill(first, signal.SIGKILL)

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and server.encoders() in ([], [first]):
        time.sleep(0.2)
    assert len(server.encoders()) == 1 and server.encoders() != [first]
    assert upload(session, server.base, examples / "obama.jpg").status_code == 201


def running(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_reload_restarts_the_encoder_and_stopping_gunicorn_stops_it(server: Server) -> None:
    """SIGHUP: a new encoder (on the new code), the old one gone; SIGTERM to the master: no encoder left."""
    (first,) = server.encoders()

    os.kill(server.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and server.encoders() in ([], [first]):
        time.sleep(0.2)
    (second,) = server.encoders()
    assert second != first and not running(first)

    os.kill(
        server.process.pid, signal.SIGTERM
    )  # the encoder is in its own session: only the master can stop it
    assert server.process.wait(timeout=WAIT_S) == 0
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and running(second):
        time.sleep(0.2)
    assert not running(second)


def _dribble(base: str, cookies: dict[str, str], stop: threading.Event, answers: list[bytes]) -> None:
    """A logged-in member's upload that sends its headers, then one byte of its body a second."""
    port = int(base.rsplit(":", 1)[1])
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as client:
        client.sendall(
            b"POST /api/references/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Cookie: {cookie}\r\nX-CSRFToken: {cookies['csrftoken']}\r\nReferer: {base}/\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=xx\r\nContent-Length: 1000000\r\n\r\n--xx\r\n"
        )
        client.settimeout(1.0)
        while not stop.is_set():
            try:
                answer = client.recv(4096)
            except TimeoutError:
                try:
                    client.sendall(b"a")
                except OSError:
                    answers.append(b"closed")
                    return
                continue
            except OSError:
                answers.append(b"closed")
                return
            answers.append(answer or b"closed")
            return


def test_clients_that_dribble_their_bodies_cannot_hold_every_thread(server: Server) -> None:
    cookies = logged_in(server.base, "slow").cookies.get_dict()
    stop = threading.Event()
    answers: list[bytes] = []
    dribblers = [
        threading.Thread(target=_dribble, args=(server.base, cookies, stop, answers))
        for _ in range(WORKERS * THREADS + 4)
    ]
    for thread in dribblers:
        thread.start()
    try:
        time.sleep(2)  # every thread is reading a body by now
        page = requests.get(f"{server.base}/accounts/login/", timeout=WAIT_S)
        assert page.status_code == 200
        deadline = time.monotonic() + WAIT_S
        while len(answers) < len(dribblers) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in dribblers:
            thread.join(timeout=30)
    # Each dribbler was answered (a 4xx: the body never came) or cut off, none served a 5xx.
    assert len(answers) == len(dribblers)
    assert not [answer[:40] for answer in answers if answer.startswith(b"HTTP/1.1 5")]
    # At least every thread's worth was refused by the body deadline, not just dropped.
    refused = [answer for answer in answers if answer.startswith(b"HTTP/1.1 4")]
    assert len(refused) >= WORKERS * THREADS, [answer[:40] for answer in answers]


def test_a_kept_alive_connection_outlives_the_body_deadline(server: Server) -> None:
    """The deadline is per request: one connection used for longer than it keeps working."""
    session = logged_in(server.base, "steady")
    statuses = []
    started = time.monotonic()
    while time.monotonic() - started < 2 * BODY_DEADLINE_S:
        statuses.append(session.get(f"{server.base}/api/references/", timeout=WAIT_S).status_code)
        time.sleep(0.5)
    # A body sent on the same connection after twice the deadline is read in full and judged.
    answer = session.post(
        f"{server.base}/api/references/",
        files={"image": ("selfie.jpg", b"not an image " * 1000, "image/jpeg")},
        headers=csrf(session, server.base),
        timeout=WAIT_S,
    )
    assert set(statuses) == {200}
    assert (answer.status_code, answer.json()["code"]) == (400, "not_image")
