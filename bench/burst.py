"""Burst of uploads: 50 members each upload a selfie within 60 s while 50 others browse and an import runs.

Sets up a dedicated PostgreSQL database (default throwback_bench_i15_burst):
--browsers members with one selfie and --photos matched photos each (as
bench/web_speed.py: synthetic encodings, so every new selfie is matched
against --browsers × --photos stored faces), and --uploaders members without
a selfie. Starts the production server as deployed, a plain `gunicorn
throwback.wsgi` reading gunicorn.conf.py (gthread workers and the selfie
encoder it starts; DEBUG off, manifest static files), and
`manage.py import_albums` of --import-photos real photos beside it.

Then, in this process: each browser thread requests My photos or the photos
API, thinks (exponential, mean --think s) and goes on until every upload has
ended; each uploader thread waits a random time within --window seconds,
posts a real photo (five_celebrity_faces, one per member, in label order) to
`POST /api/references/` with `Prefer: respond-async` as the selfie page does,
and polls the status URL every 0.25 s until the selfie is done or refused.

Reported: page p95 during the burst (goal < 100 ms), upload → matched p50/p95
(from the POST to the first status answer saying done; goal p95 < 30 s),
refusals by code (the photos' own faults: not errors), errors (any other
non-2xx answer or failed request; goal 0), and the peak RSS of the encoder
and of the web workers (/proc, sampled every 0.5 s).

Run from the repository root (about 3 minutes, mostly the encoder):

    .venv/bin/python bench/burst.py
    .venv/bin/python bench/burst.py --encoders 2 --json /tmp/burst.json
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from common import REPO, machine, out, setup_django_postgres, table  # noqa: E402 - bench/ is on sys.path
from web_speed import free_port, populate, request, session_key, wait_until_serving  # noqa: E402

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
POLL_S = 0.25
PAGE_GOAL_MS = 100
UPLOAD_GOAL_S = 30


def selfies(count: int) -> list[Path]:
    """The first `count` one-person photos of five_celebrity_faces (web photos of varied sizes)."""
    folder = FACES_DIR / "five_celebrity_faces"
    with (folder / "labels.csv").open(newline="") as file:
        rows = [row["file"] for row in csv.DictReader(file) if row["kind"] == "single"]
    if len(rows) < count:
        raise SystemExit(f"only {len(rows)} one-person photos in {folder}")
    return [folder / name for name in rows[:count]]


def import_folder(work: Path, count: int) -> Path:
    """A folder of `count` LFW photos for the import that runs during the burst (copies in `work`, a temporary folder)."""
    root = work / "import" / "Burst night"
    root.mkdir(parents=True)
    for photo in sorted((FACES_DIR / "lfw_dev" / "images").glob("*/*.jpg"))[:count]:
        shutil.copyfile(photo, root / photo.name)
    return root.parent


def uploader_sessions(count: int) -> list[str]:
    """Members with consent and no selfie yet; their session keys."""
    from django.utils import timezone

    from members.models import Member

    keys = []
    for n in range(count):
        member = Member(username=f"burst{n}", consent_given_at=timezone.now())
        member.set_unusable_password()
        member.save()
        keys.append(session_key(member))
    return keys


def multipart(photo: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{photo.name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pages_ms: list[float] = []
        self.upload_s: list[float] = []
        self.accept_ms: list[float] = []
        self.refusals: Counter[str] = Counter()
        self.errors: list[str] = []

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def browse(
    port: int, key: str, seed: int, pages: int, think: float, done: threading.Event, tally: Tally
) -> None:
    rnd = random.Random(seed)  # noqa: S311 - think times, not secrets
    page = rnd.randrange(pages)
    time.sleep(rnd.uniform(0, think))
    while not done.is_set():
        path = rnd.choice(["/", "/api/photos/"])
        started = time.perf_counter()
        try:
            status, _, _ = request(port, f"{path}?page={page + 1}", f"sessionid={key}")
        except (OSError, http.client.HTTPException) as exc:
            tally.error(f"{path}: {type(exc).__name__}")
        else:
            with tally.lock:
                tally.pages_ms.append(1000 * (time.perf_counter() - started))
            if status != 200:
                tally.error(f"{path}: HTTP {status}")
        page = (page + 1) % pages
        time.sleep(rnd.expovariate(1 / think))


def upload(port: int, key: str, photo: Path, delay: float, tally: Tally) -> None:
    time.sleep(delay)
    try:
        _, _, headers = request(port, "/references/", f"sessionid={key}")
        token = re.search(r"csrftoken=([^;]+)", headers.get("set-cookie", ""))
        csrf = token.group(1) if token else ""
        body, content_type = multipart(photo)
        started = time.perf_counter()
        status, answer, headers = request(
            port,
            "/api/references/",
            f"sessionid={key}; csrftoken={csrf}",
            method="POST",
            body=body,
            headers={"Content-Type": content_type, "X-CSRFToken": csrf, "Prefer": "respond-async"},
        )
        with tally.lock:
            tally.accept_ms.append(1000 * (time.perf_counter() - started))
        if status != 202:
            tally.error(f"upload {photo.name}: HTTP {status} {answer[:100]!r}")
            return
        location = headers["location"]
        while True:
            time.sleep(POLL_S)
            status, answer, _ = request(port, location, f"sessionid={key}")
            if status != 200:
                tally.error(f"status {location}: HTTP {status}")
                return
            state = json.loads(answer)
            if state["state"] in ("done", "refused"):
                with tally.lock:
                    tally.upload_s.append(time.perf_counter() - started)
                    if state["state"] == "refused":
                        tally.refusals[state["code"]] += 1
                return
    except (OSError, http.client.HTTPException, KeyError, ValueError) as exc:
        tally.error(f"upload {photo.name}: {type(exc).__name__}: {exc}")


def children(master: int) -> dict[int, str]:
    found = {}
    for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        try:
            found[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except FileNotFoundError:
            continue
    return found


def rss_mb(pid: int) -> float:
    try:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except FileNotFoundError:
        return 0.0
    return int(match.group(1)) / 1024 if match else 0.0


def sample_rss(master: int, done: threading.Event, peaks: dict[str, float]) -> None:
    while not done.wait(0.5):
        for pid, command in children(master).items():
            kind = "encoder" if "run_encoder" in command else "worker"
            peaks[kind] = max(peaks.get(kind, 0.0), rss_mb(pid))


def analysis_times() -> list[float]:
    """Seconds the encoder spent on each upload (its row's started → finished), from the database."""
    from members.models import SelfieUpload

    rows = SelfieUpload.objects.filter(finished__isnull=False, started__isnull=False)
    return [(row.finished - row.started).total_seconds() for row in rows.only("started", "finished")]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploaders", type=int, default=50)
    parser.add_argument("--browsers", type=int, default=50)
    parser.add_argument("--photos", type=int, default=200, help="matched photos per browsing member")
    parser.add_argument("--window", type=float, default=60.0, help="uploads start within this many seconds")
    parser.add_argument("--think", type=float, default=1.0, help="browsers' mean think time, s")
    parser.add_argument("--import-photos", type=int, default=60, help="photos imported during the burst")
    parser.add_argument("--workers", type=int, default=2, help="GUNICORN_WORKERS")
    parser.add_argument("--threads", type=int, default=8, help="GUNICORN_THREADS")
    parser.add_argument("--encoders", type=int, default=1, help="THROWBACK_ENCODERS")
    parser.add_argument(
        "--database", default=os.environ.get("THROWBACK_BENCH_BURST_DATABASE", "throwback_bench_i15_burst")
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="throwback-bench-burst-"))
    os.environ["SECRET_KEY"] = "bench-" + uuid.uuid4().hex  # the sessions made here are the server's
    setup_django_postgres(work, database=args.database)
    from django.conf import settings
    from django.core.management import call_command

    browser_keys = populate(args.browsers, args.photos)
    uploader_keys = uploader_sessions(args.uploaders)
    photos = selfies(args.uploaders)
    folder = import_folder(work, args.import_photos)
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(work / "static"),
        "LOG_LEVEL": "WARNING",
        "DATABASE_CONN_MAX_AGE": "60",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(args.workers),
        "GUNICORN_THREADS": str(args.threads),
        "THROWBACK_ENCODERS": str(args.encoders),
        "THROWBACK_UPLOADS_PER_HOUR": "0",
    }
    settings.STATIC_ROOT = str(work / "static")
    call_command("collectstatic", interactive=False, verbosity=0)
    gunicorn = subprocess.Popen(  # noqa: S603 - our own gunicorn, as deployed
        [str(Path(sys.executable).parent / "gunicorn"), "throwback.wsgi"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    importer = None
    tally, peaks, done = Tally(), {}, threading.Event()
    try:
        wait_until_serving(port)
        # Start once the encoder has loaded dlib's models (its RSS passes 150 MB), as on a running site.
        for _ in range(600):
            encoders = [pid for pid, command in children(gunicorn.pid).items() if "run_encoder" in command]
            if encoders and all(rss_mb(pid) > 150 for pid in encoders):
                break
            time.sleep(0.2)
        pages = -(-args.photos // settings.THROWBACK_PHOTOS_PER_PAGE)
        sampler = threading.Thread(target=sample_rss, args=(gunicorn.pid, done, peaks), daemon=True)
        sampler.start()
        importer = subprocess.Popen(  # noqa: S603 - our own manage.py
            [
                sys.executable,
                str(REPO / "manage.py"),
                "import_albums",
                "--folder",
                str(folder),
                "--workers",
                "1",
                "--no-progress",
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        rnd = random.Random(15)  # noqa: S311 - arrival times, not secrets
        browsers = [
            threading.Thread(target=browse, args=(port, key, n, pages, args.think, done, tally))
            for n, key in enumerate(browser_keys)
        ]
        uploaders = [
            threading.Thread(target=upload, args=(port, key, photo, rnd.uniform(0, args.window), tally))
            for key, photo in zip(uploader_keys, photos, strict=True)
        ]
        started = time.monotonic()
        for thread in browsers + uploaders:
            thread.start()
        for thread in uploaders:
            thread.join()
        burst_s = time.monotonic() - started
        done.set()
        for thread in browsers:
            thread.join()
        import_line = importer.communicate(timeout=1800)[0].strip().splitlines()[-1:]
    finally:
        done.set()
        if importer is not None and importer.poll() is None:
            importer.kill()
        os.killpg(gunicorn.pid, 15)
        gunicorn.wait(timeout=120)

    analysed = analysis_times()
    figures = {
        "machine": machine(),
        "command": ".venv/bin/python bench/burst.py " + " ".join(sys.argv[1:]),
        "uploaders": args.uploaders,
        "browsers": args.browsers,
        "photos": args.photos,
        "window_s": args.window,
        "think_s": args.think,
        "workers": args.workers,
        "threads": args.threads,
        "encoders": args.encoders,
        "import_photos": args.import_photos,
        "burst_s": burst_s,
        "pages": len(tally.pages_ms),
        "page_p50_ms": pct(tally.pages_ms, 0.5),
        "page_p95_ms": pct(tally.pages_ms, 0.95),
        "page_p99_ms": pct(tally.pages_ms, 0.99),
        "accept_p95_ms": pct(tally.accept_ms, 0.95),
        "uploads_ended": len(tally.upload_s),
        "upload_p50_s": statistics.median(tally.upload_s) if tally.upload_s else float("nan"),
        "upload_p95_s": pct(tally.upload_s, 0.95),
        "upload_max_s": max(tally.upload_s, default=float("nan")),
        "analysis_mean_s": statistics.mean(analysed) if analysed else float("nan"),
        "analysis_p95_s": pct(analysed, 0.95),
        "refusals": dict(tally.refusals),
        "errors": len(tally.errors),
        "error_kinds": sorted(set(tally.errors))[:10],
        "encoder_rss_mb": peaks.get("encoder", 0.0),
        "worker_rss_mb": peaks.get("worker", 0.0),
        "import": " ".join(import_line),
    }
    out("Burst of uploads: gunicorn (gunicorn.conf.py) on loopback, one thread per member")
    out(f"machine: {figures['machine']}")
    out(
        f"{args.uploaders} uploads within {args.window:.0f} s, {args.browsers} members browsing "
        f"({args.photos} matched photos each, think {args.think} s), an import of {args.import_photos} photos; "
        f"{args.workers} workers × {args.threads} threads, {args.encoders} encoder(s); burst lasted {burst_s:.0f} s"
    )
    table(
        ["figure", "value", "goal"],
        [
            [
                "page p50 / p95 / p99, ms",
                f"{figures['page_p50_ms']:.0f} / {figures['page_p95_ms']:.0f} / {figures['page_p99_ms']:.0f}",
                f"p95 < {PAGE_GOAL_MS}",
            ],
            ["upload answered (202) p95, ms", f"{figures['accept_p95_ms']:.0f}", ""],
            [
                "upload → matched p50 / p95 / max, s",
                f"{figures['upload_p50_s']:.1f} / {figures['upload_p95_s']:.1f}"
                f" / {figures['upload_max_s']:.1f}",
                f"p95 < {UPLOAD_GOAL_S}",
            ],
            [
                "uploads ended / refused",
                f"{figures['uploads_ended']} / {sum(tally.refusals.values())} {dict(tally.refusals)}",
                f"{args.uploaders} / -",
            ],
            ["errors", figures["errors"], "0"],
            [
                "peak RSS encoder / web worker, MB",
                f"{figures['encoder_rss_mb']:.0f} / {figures['worker_rss_mb']:.0f}",
                "",
            ],
        ],
    )
    if tally.errors:
        out("errors: " + "; ".join(figures["error_kinds"]))  # type: ignore[arg-type]
    out(f"import: {figures['import']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
