"""Import speed: `manage.py import_albums --folder` end to end versus raw face encoding.

For each N given with --workers: `manage.py import_albums --folder ROOT
--workers N --no-progress` runs as its own process against a fresh dedicated
PostgreSQL database (default throwback_bench_i6_import, emptied first) and a
fresh media folder, timed from start to exit (interpreter and Django start-up,
listing and hashing, encoding, copying files into media storage, database
writes, matching). N counts encoding processes: the importer's own process
(listing, claims, database writes) runs beside them and may use another core.

The reference, in the same run: raw `faces.engine.analyse(bytes)` of the same
files in the same order, in N spawned processes that each load dlib's models
once, timed likewise from starting the processes to the last result, with the
import's own engine options (`faces.services.engine_options()`: the configured
encode size, landmarks, upsampling), so both do the same encoding work.

Three ratios import/raw photos per second:
- end to end: both totals, start-up included;
- steady state: photos done after the first one over the time from the first
  done to the last done (the import's photos counted when their batch is
  stored, from Photo.encoded_at);
- fixed start-up cost in seconds: total minus photos / steady rate.
An association imports thousands of photos, so the steady-state ratio is the
one that scales; the fixed cost is paid once per run.

By default the albums are every labelled photo of ../shared/faces:
face_recognition_examples, five_celebrity_faces, bbt_faces and lfw_dev/images
(579 photos), one album per dataset folder, built as symlinks under /tmp
(FolderSource takes only the files directly inside each album folder, so
nested files are linked flat). The photos are never copied.

Run from the repository root (about 5 minutes on 2 cores at load 2 with the defaults):

    .venv/bin/python bench/import_speed.py                  # workers 1 and 2
    .venv/bin/python bench/import_speed.py --workers 1 2 4
    .venv/bin/python bench/import_speed.py --folder /path/to/albums   # sub-folders = albums
    .venv/bin/python bench/import_speed.py --limit 20       # quick check: 20 photos per album
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, machine, out, setup_django_postgres, table  # noqa: E402 - bench/ is on sys.path

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
# (album name, folder under ../shared/faces whose images, at any depth, form the album)
DEFAULT_ALBUMS = [
    ("face_recognition_examples", "face_recognition_examples"),
    ("five_celebrity_faces", "five_celebrity_faces"),
    ("bbt_faces", "bbt_faces"),
    ("lfw_dev", "lfw_dev/images"),
]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def build_albums(root: Path, limit: int | None) -> None:
    """Symlink the default datasets' images into root/<album>/<flattened relative path>."""
    for album, folder in DEFAULT_ALBUMS:
        source = FACES_DIR / folder
        if not source.is_dir():
            raise SystemExit(f"{source} not found; set THROWBACK_FACES_DIR to the labelled photos folder")
        target = root / album
        target.mkdir(parents=True)
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        for path in files[:limit]:
            flat = path.relative_to(source).as_posix().replace("/", "__")
            (target / flat).symlink_to(path.resolve())


def _raw_worker(paths: list[str], options: Any) -> tuple[int, int, list[float]]:
    """One raw process: load the models, analyse every file; (faces, failures, wall time each finished)."""
    from faces import engine

    engine.warm_up()
    faces = failed = 0
    done = []
    for path in paths:
        try:
            faces += len(engine.analyse(Path(path).read_bytes(), options).faces)
        except engine.EngineError:
            failed += 1
        done.append(time.time())
    return faces, failed, done


def raw(paths: list[str], workers: int) -> tuple[float, float, int, int, list[float]]:
    """Start (wall clock), seconds, faces, failures and finish times of analysing paths in `workers` processes.

    Photo i goes to process i % workers, so each process gets the same mix as
    the import's workers, in the import's order.
    """
    from faces.services import engine_options

    options = engine_options()
    shares = [paths[i::workers] for i in range(workers)]
    wall, started = time.time(), time.monotonic()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.starmap(_raw_worker, [(share, options) for share in shares])
    seconds = time.monotonic() - started
    done = sorted(t for r in results for t in r[2])
    return wall, seconds, sum(r[0] for r in results), sum(r[1] for r in results), done


def steady(start: float, total_s: float, done: list[float]) -> tuple[float, float, float]:
    """(photos/s from the first photo done to the last, fixed seconds = total - photos / that rate,
    seconds from the start to the first photo done).

    `done` holds the wall-clock times photos were done (equal times: one
    stored batch); the photos done at the first time are left out of the rate.
    """
    first, last = done[0], done[-1]
    later = sum(1 for t in done if t > first)
    if later == 0 or last <= first:
        return len(done) / total_s, 0.0, first - start
    rate = later / (last - first)
    return rate, total_s - len(done) / rate, first - start


def command_import(root: Path, workers: int, env: dict[str, str]) -> tuple[float, float, str, list[float]]:
    """Start (wall clock), seconds, summary line and store times of `manage.py import_albums --folder root`.

    Run on an emptied database; the store times are the photos' encoded_at.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE faces_facecluster, faces_faceencoding, faces_photo, faces_album, faces_match CASCADE"
        )
    shutil.rmtree(env["MEDIA_ROOT"], ignore_errors=True)
    wall, started = time.time(), time.monotonic()
    result = subprocess.run(  # noqa: S603 - our own interpreter and command
        [
            sys.executable,
            "manage.py",
            "import_albums",
            "--folder",
            str(root),
            "--workers",
            str(workers),
            "--no-progress",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.monotonic() - started
    from faces.models import Photo

    stored = Photo.objects.filter(status=Photo.Status.DONE).values_list("encoded_at", flat=True)
    done = sorted(at.timestamp() for at in stored if at is not None)
    return wall, seconds, result.stdout.strip().splitlines()[-1], done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    parser.add_argument("--folder", type=Path, help="existing album root (every sub-folder is an album)")
    parser.add_argument("--limit", type=int, help="at most this many photos per default album")
    parser.add_argument(
        "--database", default=os.environ.get("THROWBACK_BENCH_IMPORT_DATABASE", "throwback_bench_i6_import")
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if any(n < 1 for n in args.workers):
        parser.error("--workers must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="throwback-bench-import-"))
    try:
        setup_django_postgres(work, database=args.database)
        from faces.sources.folder import FolderSource

        if args.folder:
            root = args.folder
        else:
            root = work / "albums"
            build_albums(root, args.limit)
        source = FolderSource(root)
        listing = [(album, source.photos(album).photos) for album in source.albums()]
        paths = [photo.path for _, photos in listing for photo in photos]
        env = {**os.environ, "MEDIA_ROOT": str(work / "media"), "LOG_LEVEL": "WARNING"}

        out("Import speed: manage.py import_albums --folder (own process, PostgreSQL) vs raw engine.analyse")
        out(f"machine: {machine()}")
        out(f"albums: {', '.join(f'{album.title} ({len(photos)})' for album, photos in listing)}")
        out("N = encoding processes; the importer's own process (database writes) runs beside them.")
        out()
        rows: list[list[object]] = []
        figures: list[dict[str, Any]] = []
        for workers in args.workers:
            raw_wall, raw_s, raw_faces, _raw_failed, raw_done = raw(paths, workers)
            raw_rate, raw_fixed, raw_first = steady(raw_wall, raw_s, raw_done)
            import_wall, import_s, line, import_done = command_import(root, workers, env)
            import_rate, import_fixed, import_first = steady(
                import_wall, import_s, import_done or [import_wall + import_s]
            )
            faces = re.search(r"([\d,]+) faces", line)
            import_faces = int(faces.group(1).replace(",", "")) if faces else -1
            figures.append(
                {
                    "workers": workers,
                    "photos": len(paths),
                    "raw_s": raw_s,
                    "raw_faces": raw_faces,
                    "raw_steady_rate": raw_rate,
                    "raw_fixed_s": raw_fixed,
                    "raw_first_s": raw_first,
                    "import_s": import_s,
                    "import_faces": import_faces,
                    "import_steady_rate": import_rate,
                    "import_fixed_s": import_fixed,
                    "import_first_s": import_first,
                    "summary": line,
                }
            )
            for name, seconds, found, rate, fixed in (
                (f"raw analyse(), {workers} process(es)", raw_s, raw_faces, raw_rate, raw_fixed),
                (f"import_albums --workers {workers}", import_s, import_faces, import_rate, import_fixed),
            ):
                rows.append(
                    [
                        name,
                        len(paths),
                        found,
                        f"{seconds:.1f}",
                        f"{len(paths) / seconds:.2f}",
                        f"{rate:.2f}",
                        f"{fixed:.1f}",
                    ]
                )
        table(["run", "photos", "faces", "seconds", "photos/s", "steady photos/s", "fixed s"], rows)
        out()
        for figure in figures:
            out(
                f"workers={figure['workers']}: import/raw end to end {figure['raw_s'] / figure['import_s']:.2f}, "
                f"steady state {figure['import_steady_rate'] / figure['raw_steady_rate']:.2f}; "
                f"fixed start-up {figure['import_fixed_s']:.1f} s vs raw {figure['raw_fixed_s']:.1f} s; "
                f"first photo done after {figure['import_first_s']:.1f} s vs raw {figure['raw_first_s']:.1f} s; "
                f"summary: {figure['summary']}"
            )
        by = {int(f["workers"]): f for f in figures}
        for workers, figure in by.items():
            if workers > 1 and 1 in by:
                out(
                    f"speed-up {workers} vs 1 worker: import {by[1]['import_s'] / figure['import_s']:.2f}x "
                    f"(steady {figure['import_steady_rate'] / by[1]['import_steady_rate']:.2f}x), "
                    f"raw {by[1]['raw_s'] / figure['raw_s']:.2f}x "
                    f"(steady {figure['raw_steady_rate'] / by[1]['raw_steady_rate']:.2f}x)"
                )
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"machine": machine(), "runs": figures}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
