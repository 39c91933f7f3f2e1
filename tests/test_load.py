"""Load: 50 members for 60 s against a real gunicorn while an import runs.

The test starts the production server as deployed (`gunicorn throwback.wsgi`
with gunicorn.conf.py: gthread workers and the selfie encoder it starts) on a
free loopback port with the test database, and `manage.py import_albums
--folder` beside it. Fifty threads, one per member, log in through the login
form, upload a selfie (as the page does, `Prefer: respond-async`, then
polling its status; every fifth member uploads two without a preference,
waiting for the answer, and then deletes one), visit every page once and then
browse My photos, the photos API, the photo files and their selfies until the
time is up. The run is bounded (LOAD_SECONDS, at most 50 connections,
loopback only).

Asserted: no request failed (no 5xx, no refused connection, no time-out, no
unexpected status), every accepted upload ends analysed (none lost, none left
waiting) and stored with its image, every deleted one is gone, and the import
completed. Counts and latencies are written to $THROWBACK_LOAD_REPORT when
set (not asserted: timing is a benchmark figure, bench/burst.py, not a test).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.files.storage import default_storage
from django.db import connection

from faces.models import Photo
from members.models import Member, ReferenceFace, SelfieUpload
from tests.conftest import REPO, make_album_folder
from tests.factories import MemberFactory

MEMBERS = 50
LOAD_SECONDS = float(os.environ.get("THROWBACK_LOAD_SECONDS", "60"))
PASSWORD = "correct horse battery"  # MemberFactory's
REQUEST_TIMEOUT_S = 180  # generous: a busy machine
ANALYSIS_TIMEOUT_S = 900  # every upload analysed, one after another by one encoder, on a busy machine


@dataclass
class Tally:
    """What all members saw; guarded by `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    accepted: dict[int, str] = field(default_factory=dict)  # reference id → username
    uploads: dict[int, str] = field(default_factory=dict)  # upload id → username
    deleted: set[int] = field(default_factory=set)

    def record(
        self, label: str, response: requests.Response | None, started: float, ok: tuple[int, ...]
    ) -> None:
        with self.lock:
            self.latencies_s.append(time.monotonic() - started)
            if response is None:
                return
            self.statuses[f"{label} {response.status_code}"] += 1
            if response.status_code not in ok:
                self.errors.append(f"{label}: HTTP {response.status_code} {response.text[:200]!r}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _member_session(
    base: str, username: str, selfie: bytes, uploads: int, deadline: float, tally: Tally
) -> None:
    """One member: log in, upload, then browse until the deadline."""
    rng = random.Random(username)
    session = requests.Session()

    def call(
        label: str, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: object
    ) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = session.request(
                method, base + path, timeout=REQUEST_TIMEOUT_S, allow_redirects=False, **kwargs
            )  # type: ignore[arg-type]
        except requests.RequestException as exc:
            with tally.lock:
                tally.errors.append(f"{label}: {exc.__class__.__name__}: {exc}")
            return None
        tally.record(label, response, started, ok)
        return response

    def csrf() -> dict[str, str]:
        return {"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": base + "/"}

    call("login page", "GET", "/accounts/login/")
    logged_in = call(
        "login",
        "POST",
        "/accounts/login/",
        ok=(302,),
        data={"username": username, "password": PASSWORD},
        headers=csrf(),
    )
    if logged_in is None or logged_in.headers.get("Location") != "/":
        with tally.lock:
            tally.errors.append(f"login of {username} failed")
        return
    ids = []
    for _ in range(uploads):
        # Every fifth member waits for the answer (no preference); the others do as the page does.
        wait = uploads > 1
        response = call(
            "upload",
            "POST",
            "/api/references/",
            ok=(201, 202) if wait else (202,),
            files={"image": ("me.jpg", selfie)},
            headers={**csrf(), **({} if wait else {"Prefer": "respond-async"})},
        )
        if response is None or response.status_code not in (201, 202):
            continue
        if response.status_code == 202:
            with tally.lock:
                tally.uploads[response.json()["id"]] = username
            selfie_id = _analysed(call, response.headers["Location"], tally)
        else:
            selfie_id = response.json()["id"]
        if selfie_id is not None:
            ids.append(selfie_id)
            with tally.lock:
                tally.accepted[selfie_id] = username
    if len(ids) > 1:
        gone = call("delete", "DELETE", f"/api/references/{ids[0]}/", ok=(204,), headers=csrf())
        if gone is not None and gone.status_code == 204:
            with tally.lock:
                tally.deleted.add(ids[0])

    def browse(choice: float) -> None:
        if choice < 0.35:
            call("my photos", "GET", "/")
        elif choice < 0.7:
            page = call("photos api", "GET", "/api/photos/")
            if page is not None and page.status_code == 200:
                for item in page.json()["results"][:2]:
                    call("photo file", "GET", item["url"].removeprefix(base))
        elif choice < 0.9:
            call("references api", "GET", "/api/references/")
        else:
            call("selfies page", "GET", "/references/")

    for choice in (0.0, 0.5, 0.8, 0.95):  # every page once, even when the uploads took all the time
        browse(choice)
    while time.monotonic() < deadline:
        browse(rng.random())
        time.sleep(rng.uniform(0.05, 0.3))


def _analysed(call, location: str, tally: Tally) -> int | None:  # type: ignore[no-untyped-def]
    """Poll an upload's status URL until it is analysed; the selfie's id (None: refused or no answer)."""
    deadline = time.monotonic() + ANALYSIS_TIMEOUT_S
    while time.monotonic() < deadline:
        status = call("upload status", "GET", location)
        if status is None or status.status_code != 200:
            return None
        body = status.json()
        if body["state"] == "done":
            return int(body["selfie"]["id"])
        if body["state"] == "refused":
            with tally.lock:
                tally.errors.append(f"upload {body['id']} refused: {body['code']} {body['error']}")
            return None
        time.sleep(1)
    with tally.lock:
        tally.errors.append(f"upload at {location} not analysed after {ANALYSIS_TIMEOUT_S} s")
    return None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fifty_members_for_a_minute_while_an_import_runs(
    tmp_path: Path, faces_dir: Path, examples: Path, media_root: Path
) -> None:
    s = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "throwback.settings",
        "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
        "MEDIA_ROOT": str(media_root),
        "SECRET_KEY": "load-test-secret-key",
        "THROWBACK_DATA_DIR": str(tmp_path / "data"),
        "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "LOG_LEVEL": "WARNING",
    }
    # Photos already there (some of Obama, so members see matches), and a folder the import works on meanwhile.
    lfw = sorted((faces_dir / "lfw_dev" / "images").glob("*/*.jpg"))
    before = make_album_folder(
        tmp_path / "before", {"Gala": [examples / n for n in ("obama2.jpg", "obama3.jpg", "biden.jpg")]}
    )
    during = make_album_folder(tmp_path / "during", {"Summit": [examples / "obama1.jpg", *lfw[:60]]})
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run(
        [*manage, "import_albums", "--folder", str(before), "--workers", "1", "--no-progress"],
        env=env,
        check=True,
        capture_output=True,
    )
    # The server runs the production settings, whose hashers do not include
    # the tests' fast MD5: store PBKDF2 hashes (few iterations; the first
    # login upgrades them, as it would any old hash).
    password = PBKDF2PasswordHasher().encode(PASSWORD, "loadtestsalt", iterations=1000)
    for n in range(MEMBERS):
        MemberFactory(username=f"load{n:02d}")
    assert Member.objects.filter(username__startswith="load").update(password=password) == MEMBERS
    selfie = (examples / "obama-240p.jpg").read_bytes()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "throwback.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    importer = None
    try:
        for _ in range(300):
            try:
                if requests.get(f"{base}/accounts/login/", timeout=60).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still starting
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start")
        importer = subprocess.Popen(
            [*manage, "import_albums", "--folder", str(during), "--workers", "1", "--no-progress"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        tally = Tally()
        deadline = time.monotonic() + LOAD_SECONDS
        threads = [
            threading.Thread(
                target=_member_session,
                args=(base, f"load{n:02d}", selfie, 2 if n % 5 == 0 else 1, deadline, tally),
            )
            for n in range(MEMBERS)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=LOAD_SECONDS + 2 * REQUEST_TIMEOUT_S + ANALYSIS_TIMEOUT_S)
        elapsed = time.monotonic() - started
        assert not any(thread.is_alive() for thread in threads)
        import_out, import_err = importer.communicate(timeout=600)
    finally:
        if importer is not None and importer.poll() is None:
            importer.kill()
        os.killpg(gunicorn.pid, signal.SIGTERM)
        _, gunicorn_log = gunicorn.communicate(timeout=60)

    report = {
        "members": MEMBERS,
        "seconds": round(elapsed, 1),
        "requests": sum(tally.statuses.values()),
        "errors": len(tally.errors),
        "statuses": dict(sorted(tally.statuses.items())),
        "uploads_accepted": len(tally.accepted),
        "uploads_async": len(tally.uploads),
        "uploads_deleted": len(tally.deleted),
        "latency_p50_s": round(statistics.median(tally.latencies_s), 3),
        "latency_p95_s": round(statistics.quantiles(tally.latencies_s, n=20)[-1], 3),
        "import": import_out.strip(),
    }
    if os.environ.get("THROWBACK_LOAD_REPORT"):
        Path(os.environ["THROWBACK_LOAD_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")

    assert tally.errors == [], tally.errors[:10]
    assert "Error" not in gunicorn_log and "Traceback" not in gunicorn_log, gunicorn_log[-2000:]
    # Every upload was accepted and analysed (none lost, none left waiting), each
    # stored with its image; every deleted one is gone.
    uploads = MEMBERS + MEMBERS // 5
    assert len(tally.accepted) == uploads
    assert not SelfieUpload.objects.exclude(state=SelfieUpload.State.DONE).exists()
    assert SelfieUpload.objects.count() == uploads
    assert set(tally.uploads) <= set(SelfieUpload.objects.values_list("pk", flat=True))
    stored = dict(ReferenceFace.objects.selfies().values_list("id", "member__username"))
    assert stored == {pk: name for pk, name in tally.accepted.items() if pk not in tally.deleted}
    assert len(tally.deleted) == MEMBERS // 5
    assert all(
        default_storage.exists(name)
        for name in ReferenceFace.objects.selfies().values_list("image", flat=True)
    )
    # The import ran beside the load and completed.
    assert importer.returncode == 0, import_err
    assert re.search(rf"Imported 1 albums: {len(lfw[:60]) + 1} new, .* 0 failed", import_out), import_out
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 3 + len(lfw[:60]) + 1
    assert tally.statuses["photo file 200"] > 0 and tally.statuses["my photos 200"] > 0
