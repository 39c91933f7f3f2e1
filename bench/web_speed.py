"""Web speed: latency of the photos page and GET /api/photos/ under 50 members, and worker memory.

Sets up a dedicated PostgreSQL database (default throwback_bench_i6_web):
--members members, each with one selfie and --photos matched folder photos
(spread over 20 albums), collects static files, and starts gunicorn on
127.0.0.1 (a free port, --gunicorn-workers gthread workers of gunicorn.conf.py, the production
settings: DEBUG off, whitenoise manifest storage). Then a load generator in
this process, one thread per member with its own session cookie, runs for
--seconds per endpoint: each member requests, waits a random think time
(exponential, mean --think seconds) and requests again, cycling through the
pages of its photos. Reported: requests, errors (anything but 200, time-outs
included), p50/p95/p99 latency, and with --think 0 the saturated throughput;
the CPU time per request of the gunicorn workers and of the load generator
itself (both from /proc, so other processes do not inflate them), and how
busy all cores were (/proc/stat: what else ran shows there). The workers keep
their database connections as deployed (DATABASE_CONN_MAX_AGE, --conn-max-age,
default 60; 0 opens one connection per request).

Memory: the resident set (VmRSS) of every gunicorn worker after start-up,
after the load, and after a selfie upload (POST /api/references/ with a real
photo; with the default THROWBACK_ENCODE_SELFIES_IN=encoder the worker queues
it and waits for the encoder process gunicorn.conf.py starts, which is not
counted as a worker), whether a worker has dlib's library mapped after the
uploads, and whether importing the URL configuration loads face_recognition.

Run from the repository root (about 2 minutes):

    .venv/bin/python bench/web_speed.py
    .venv/bin/python bench/web_speed.py --seconds 10 --think 0
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from common import REPO, machine, out, setup_django_postgres, table  # noqa: E402 - bench/ is on sys.path

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
SELFIE = "face_recognition_examples/obama.jpg"
ALBUMS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def session_key(member: object) -> str:
    """A logged-in session for `member` in the database's session store; its key for the cookie."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(member.pk)  # type: ignore[attr-defined]
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = member.get_session_auth_hash()  # type: ignore[attr-defined]
    session.create()
    return str(session.session_key)


def wait_until_serving(port: int, tries: int = 300) -> None:
    """Until the server answers the login page (0.2 s between tries)."""
    for _ in range(tries):
        try:
            request(port, "/accounts/login/", "")
            return
        except OSError:
            time.sleep(0.2)


def populate(members: int, photos_each: int) -> list[str]:
    """Members with one selfie and photos_each matched photos each; returns their session keys."""
    import numpy as np
    from django.db import connection
    from django.utils import timezone

    from faces.models import Album, FaceEncoding, Match, Photo
    from members.models import Member, ReferenceFace

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE faces_facecluster, faces_faceencoding, faces_photo, faces_album, faces_match, "
            "members_referenceface, members_member, django_session CASCADE"
        )
    rng = np.random.default_rng(1)
    albums = Album.objects.bulk_create(
        Album(source=Album.Source.FOLDER, source_id=f"album-{a}", title=f"Event {a}", location="bench")
        for a in range(ALBUMS)
    )
    photos = Photo.objects.bulk_create(
        (
            Photo(
                album=albums[i % ALBUMS],
                source_id=f"p{i}.jpg",
                file=f"photos/p{i}.jpg",
                status=Photo.Status.DONE,
                content_hash=f"{i:064x}",
            )
            for i in range(members * photos_each)
        ),
        batch_size=2000,
    )
    keys = []
    for m in range(members):
        member = Member(username=f"bench{m}", consent_given_at=timezone.now())
        member.set_unusable_password()
        member.save()
        vector = rng.normal(size=128) * 0.1
        reference = ReferenceFace(member=member, image="references/x.jpg", top=0, right=1, bottom=1, left=0)
        reference.set_encoding(vector)
        reference.save()
        faces = []
        for photo in photos[m * photos_each : (m + 1) * photos_each]:
            face = FaceEncoding(photo=photo, top=0, right=10, bottom=10, left=0)
            face.set_encoding(vector + rng.normal(size=128) * 0.01)
            faces.append(face)
        FaceEncoding.objects.bulk_create(faces, batch_size=1000)
        Match.objects.bulk_create(
            Match(member=member, reference=reference, face=face, distance=0.1) for face in faces
        )
        keys.append(session_key(member))
    with connection.cursor() as cursor:
        for name in ("faces_photo", "faces_faceencoding", "faces_match", "members_referenceface"):
            cursor.execute(f"ANALYZE {name}")
    return keys


def request(
    port: int,
    path: str,
    cookie: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers={"Cookie": cookie, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def load(
    port: int, keys: list[str], path: str, pages: int, seconds: float, think: float
) -> dict[str, object]:
    """One thread per member for `seconds`; returns latencies (ms) and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def member(key: str, seed: int) -> None:
        rnd = random.Random(seed)  # noqa: S311 - think times, not secrets
        page = rnd.randrange(pages)
        time.sleep(rnd.uniform(0, max(think, 0.05)))  # members do not all start at once
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                status, _, _ = request(port, f"{path}?page={page + 1}", f"sessionid={key}")
                error = "" if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
            elapsed = 1000 * (time.perf_counter() - started)
            with lock:
                latencies.append(elapsed)
                if error:
                    errors.append(error)
            page = (page + 1) % pages
            if think:
                time.sleep(rnd.expovariate(1 / think))

    threads = [threading.Thread(target=member, args=(key, n)) for n, key in enumerate(keys)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")

    return {
        "path": path,
        "requests": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.mean(latencies) if latencies else float("nan"),
        "rps": len(latencies) / wall,
    }


def web_workers(master: int) -> list[str]:
    """The gunicorn master's web workers: its children but the selfie encoder (gunicorn.conf.py)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [pid for pid in children if b"run_encoder" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


def worker_rss(master: int) -> dict[int, float]:
    """VmRSS in MB of each web worker of the gunicorn master."""
    result = {}
    for pid in web_workers(master):
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            result[int(pid)] = int(match.group(1)) / 1024
    return result


def workers_with_dlib(master: int) -> int:
    """How many of the gunicorn master's web workers have dlib's extension module mapped."""
    return sum("_dlib_pybind11" in Path(f"/proc/{pid}/maps").read_text() for pid in web_workers(master))


def worker_cpu_s(master: int) -> float:
    """User + system CPU seconds used so far by the gunicorn master's web workers."""
    total = 0
    for pid in web_workers(master):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])
    return (total - idle) / os.sysconf("SC_CLK_TCK"), total / os.sysconf("SC_CLK_TCK")


def imports_face_recognition(env: dict[str, str]) -> str:
    """Which of face_recognition/dlib importing the URL configuration (views, APIs) loads."""
    code = (
        "import django, sys; django.setup(); import throwback.urls, throwback.wsgi; "
        "print(','.join(m for m in ('face_recognition', 'dlib') if m in sys.modules) or 'none')"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--photos", type=int, default=200, help="matched photos per member")
    parser.add_argument("--seconds", type=float, default=20.0, help="load per endpoint (default 20)")
    parser.add_argument(
        "--think", type=float, default=1.0, help="mean think time between a member's requests, s"
    )
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument(
        "--database", default=os.environ.get("THROWBACK_BENCH_WEB_DATABASE", "throwback_bench_i6_web")
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="DATABASE_CONN_MAX_AGE of the gunicorn workers (default 60, the production default)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="throwback-bench-web-"))
    # The sessions made here must be readable by gunicorn: one key for both.
    os.environ["SECRET_KEY"] = "bench-" + uuid.uuid4().hex
    setup_django_postgres(work, database=args.database)
    from django.conf import settings
    from django.core.management import call_command

    keys = populate(args.members, args.photos)
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(work / "static"),
        "LOG_LEVEL": "WARNING",
        # setup_django_postgres sets 0 for this process; the server runs as deployed.
        "DATABASE_CONN_MAX_AGE": str(args.conn_max_age),
    }
    os.environ.update({k: env[k] for k in ("STATIC_ROOT",)})
    settings.STATIC_ROOT = str(work / "static")
    call_command("collectstatic", interactive=False, verbosity=0)
    loaded = imports_face_recognition(env)
    encode_mode = settings.THROWBACK_ENCODE_SELFIES_IN  # the server reads the same environment
    port = free_port()
    gunicorn = subprocess.Popen(  # noqa: S603 - our own gunicorn
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "throwback.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.gunicorn_workers),
            "--no-control-socket",
            "--timeout",
            "120",
        ],
        env=env,
        cwd=REPO,
    )
    try:
        wait_until_serving(port, tries=100)
        pages = -(-args.photos // settings.THROWBACK_PHOTOS_PER_PAGE)
        for key in keys[:4]:  # every worker has served both once
            request(port, "/api/photos/", f"sessionid={key}")
            request(port, "/", f"sessionid={key}")
        rss_start = worker_rss(gunicorn.pid)
        runs = []
        for path in ("/api/photos/", "/"):
            cpu, own, (busy, total) = worker_cpu_s(gunicorn.pid), time.process_time(), machine_busy()
            run = load(port, keys, path, pages, args.seconds, args.think)
            requests = max(int(run["requests"]), 1)  # type: ignore[call-overload]
            # CPU the workers spent per request: independent of how busy the machine is.
            run["cpu_ms_per_request"] = 1000 * (worker_cpu_s(gunicorn.pid) - cpu) / requests
            # The load generator's own CPU (it shares the machine), and how busy all cores were.
            run["client_cpu_ms_per_request"] = 1000 * (time.process_time() - own) / requests
            busy_now, total_now = machine_busy()
            run["machine_busy"] = (busy_now - busy) / max(total_now - total, 1e-9)
            runs.append(run)
        rss_loaded = worker_rss(gunicorn.pid)
        # A selfie upload: whichever worker takes it queues it and waits for the encoder (the default).
        status, _, headers = request(port, "/references/", f"sessionid={keys[0]}")
        csrf = re.search(r"csrftoken=([^;]+)", headers.get("set-cookie", ""))
        token = csrf.group(1) if csrf else ""
        boundary = uuid.uuid4().hex
        selfie = (FACES_DIR / SELFIE).read_bytes()
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="selfie.jpg"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + selfie
            + f"\r\n--{boundary}--\r\n".encode()
        )
        uploads = []
        for key in keys[:4]:  # enough uploads that both workers take at least one, most likely
            started = time.perf_counter()
            status, answer, _ = request(
                port,
                "/api/references/",
                f"sessionid={key}; csrftoken={token}",
                method="POST",
                body=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-CSRFToken": token},
            )
            uploads.append(
                {
                    "status": status,
                    "ms": 1000 * (time.perf_counter() - started),
                    "answer": answer[:80].decode(errors="replace"),
                }
            )
        rss_upload = worker_rss(gunicorn.pid)
        dlib_workers = workers_with_dlib(gunicorn.pid)
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)

    out("Web speed: gunicorn on loopback, one thread per member")
    out(f"machine: {machine()}")
    out(
        f"{args.members} members × {args.photos} matched photos, {args.gunicorn_workers} workers (gthread), "
        f"{args.seconds:.0f} s per endpoint, think time {args.think} s (exponential), "
        f"DATABASE_CONN_MAX_AGE={args.conn_max_age}"
    )
    table(
        [
            "endpoint",
            "requests",
            "errors",
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "worker CPU ms/request",
            "load generator CPU ms/request",
            "all cores busy",
        ],
        [
            [
                r["path"],
                r["requests"],
                r["errors"],
                f"{r['rps']:.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p95_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['cpu_ms_per_request']:.1f}",
                f"{r['client_cpu_ms_per_request']:.1f}",
                f"{r['machine_busy']:.0%}",
            ]  # type: ignore[str-format]
            for r in runs
        ],
    )
    out(f"importing throwback.urls and throwback.wsgi loads: {loaded}")
    out("selfie uploads: " + "; ".join(f"HTTP {u['status']} in {u['ms']:.0f} ms" for u in uploads))
    out(f"selfies encoded in: {encode_mode}; workers with dlib loaded after the uploads: {dlib_workers}")
    table(
        ["worker RSS, MB", *[str(pid) for pid in rss_start]],
        [
            ["after start + warm-up", *[f"{v:.0f}" for v in rss_start.values()]],
            ["after the load", *[f"{rss_loaded.get(p, float('nan')):.0f}" for p in rss_start]],
            ["after selfie uploads", *[f"{rss_upload.get(p, float('nan')):.0f}" for p in rss_start]],
        ],
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "members": args.members,
                    "photos": args.photos,
                    "seconds": args.seconds,
                    "think": args.think,
                    "workers": args.gunicorn_workers,
                    "conn_max_age": args.conn_max_age,
                    "runs": runs,
                    "loads_on_import": loaded,
                    "uploads": uploads,
                    "rss_start": list(rss_start.values()),
                    "rss_loaded": list(rss_loaded.values()),
                    "rss_upload": list(rss_upload.values()),
                    "encode_selfies_in": encode_mode,
                    "dlib_workers": dlib_workers,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
