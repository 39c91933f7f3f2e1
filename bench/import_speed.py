"""Import speed: `manage.py import_albums --folder` end to end versus raw face encoding.

For each N given with --workers: `manage.py import_albums --folder ROOT
--workers N --no-progress` runs as its own process against a fresh dedicated
PostgreSQL database (default throwback_bench_i6_import, emptied first) and a
fresh media folder, timed from start to exit (Django start-up, listing,
hashing, encoding, copying files into media storage, database writes,
matching). The reference, in the same run: raw `faces.engine.analyse(bytes)`
of the same files (default engine options, so the default encode size) in N
spawned processes, each loading dlib's models once, timed likewise from
starting the processes to the last result. The ratio import/raw photos per
second shows what everything around the encoder costs; raw N vs raw 1 shows
how encoding scales with processes.

By default the albums are ../shared/faces/face_recognition_examples,
five_celebrity_faces and lfw_dev/images, one album per dataset folder, built as
symlinks under /tmp (FolderSource takes only the files directly inside each
album folder, so nested files are linked flat). The photos are never copied.

Run from the repository root (about 5 minutes on 2 idle cores with the defaults):

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

from common import REPO, machine, out, setup_django_postgres, table  # noqa: E402 - bench/ is on sys.path

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
# (album name, folder under ../shared/faces whose images, at any depth, form the album)
DEFAULT_ALBUMS = [
    ("face_recognition_examples", "face_recognition_examples"),
    ("five_celebrity_faces", "five_celebrity_faces"),
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


def _raw_worker(paths: list[str]) -> tuple[int, int]:
    """One raw process: load the models, analyse every file; (faces, failures)."""
    from faces import engine

    engine.warm_up()
    options = engine.EngineOptions(max_side_px=int(os.environ.get("THROWBACK_ENCODE_MAX_SIDE", "500")))
    faces = failed = 0
    for path in paths:
        try:
            faces += len(engine.analyse(Path(path).read_bytes(), options).faces)
        except engine.EngineError:
            failed += 1
    return faces, failed


def raw(paths: list[str], workers: int) -> tuple[float, int, int]:
    """Seconds, faces and failures of analysing paths in `workers` spawned processes."""
    shares = [paths[i::workers] for i in range(workers)]
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_raw_worker, shares)
    return time.monotonic() - started, sum(r[0] for r in results), sum(r[1] for r in results)


def command_import(root: Path, workers: int, env: dict[str, str]) -> tuple[float, str]:
    """Seconds and summary line of `manage.py import_albums --folder root` on an emptied database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE faces_facecluster, faces_faceencoding, faces_photo, faces_album, faces_match CASCADE"
        )
    shutil.rmtree(env["MEDIA_ROOT"], ignore_errors=True)
    started = time.monotonic()
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
    return time.monotonic() - started, result.stdout.strip().splitlines()[-1]


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
        out()
        rows: list[list[object]] = []
        figures: list[dict[str, object]] = []
        for workers in args.workers:
            raw_s, raw_faces, raw_failed = raw(paths, workers)
            import_s, line = command_import(root, workers, env)
            faces = re.search(r"([\d,]+) faces", line)
            import_faces = int(faces.group(1).replace(",", "")) if faces else -1
            figures.append(
                {
                    "workers": workers,
                    "photos": len(paths),
                    "raw_s": raw_s,
                    "raw_faces": raw_faces,
                    "import_s": import_s,
                    "import_faces": import_faces,
                    "summary": line,
                }
            )
            rows.append(
                [
                    f"raw analyse(), {workers} process(es)",
                    len(paths),
                    raw_faces,
                    f"{raw_s:.1f}",
                    f"{len(paths) / raw_s:.2f}",
                ]
            )
            rows.append(
                [
                    f"import_albums --workers {workers}",
                    len(paths),
                    import_faces,
                    f"{import_s:.1f}",
                    f"{len(paths) / import_s:.2f}",
                ]
            )
        table(["run", "photos", "faces", "seconds", "photos/s"], rows)
        out()
        for figure in figures:
            out(
                f"workers={figure['workers']}: import/raw photos/s = {float(figure['raw_s']) / float(figure['import_s']):.2f}; "  # type: ignore[arg-type]
                f"summary: {figure['summary']}"
            )
        by = {int(f["workers"]): f for f in figures}  # type: ignore[call-overload]
        for workers, figure in by.items():
            if workers > 1 and 1 in by:
                out(
                    f"speed-up {workers} vs 1 worker: import {float(by[1]['import_s']) / float(figure['import_s']):.2f}x, "  # type: ignore[arg-type]
                    f"raw {float(by[1]['raw_s']) / float(figure['raw_s']):.2f}x"  # type: ignore[arg-type]
                )
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"machine": machine(), "runs": figures}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
