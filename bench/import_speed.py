"""Import speed: a folder import through the product versus raw face encoding.

Measures how fast `faces.importer.run_import(FolderSource(root), workers=N)`
turns a folder of albums into stored photos, faces and matches, for each N
given with --workers (a fresh throwaway SQLite database and an emptied media
folder per run), and, for reference, how long plain `faces.engine.analyse(bytes)`
takes over the same files in this one process (bytes read beforehand, same
engine options as the import). The ratio import/raw for 1 worker is the cost
of everything around the encoder: hashing, database writes, copying the files
into media storage.

dlib's models are loaded once in this process before anything is timed, so the
raw and 1-worker rows exclude that load; a run with N > 1 workers includes
starting its spawned worker processes, each of which loads the models itself
(that is what a real import pays).

By default the albums are ../shared/faces/face_recognition_examples,
five_celebrity_faces and lfw_dev/images, one album per dataset folder, built as
symlinks under /tmp (FolderSource takes only the files directly inside each
album folder, so nested files are linked flat). The photos are never copied.

Run from the repository root (about 1.5 minutes on 2 cores with the defaults):

    .venv/bin/python bench/import_speed.py                  # workers 1 and 2
    .venv/bin/python bench/import_speed.py --workers 1 2 4
    .venv/bin/python bench/import_speed.py --folder /path/to/albums   # sub-folders = albums
    .venv/bin/python bench/import_speed.py --limit 20       # quick check: 20 photos per album
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, out, setup_django, table  # noqa: E402 - bench/ is on sys.path

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
# (album name, folder under ../shared/faces whose images, at any depth, form the album)
DEFAULT_ALBUMS = [
    ("face_recognition_examples", "face_recognition_examples"),
    ("five_celebrity_faces", "five_celebrity_faces"),
    ("lfw_dev", "lfw_dev/images"),
]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def fresh_database(work: Path, run: int) -> None:
    """Point the default connection at a new SQLite file, migrate it, empty the media folder."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = str(work / f"db-{run}.sqlite3")
    call_command("migrate", verbosity=0)
    media = Path(settings.MEDIA_ROOT)
    shutil.rmtree(media, ignore_errors=True)
    media.mkdir(parents=True)


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


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"os.cpu_count()={os.cpu_count()}  cpu={cpu}\n"
        f"platform={platform.platform()}  python={platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    parser.add_argument("--folder", type=Path, help="existing album root (every sub-folder is an album)")
    parser.add_argument("--limit", type=int, help="at most this many photos per default album")
    args = parser.parse_args()
    if any(n < 1 for n in args.workers):
        parser.error("--workers must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="throwback-bench-import-"))
    try:
        setup_django(work, database="db-0.sqlite3")
        from faces import engine, services
        from faces.importer import run_import
        from faces.sources.folder import FolderSource

        if args.folder:
            root = args.folder
        else:
            root = work / "albums"
            build_albums(root, args.limit)
        source = FolderSource(root)
        listing = [(album, source.photos(album).photos) for album in source.albums()]
        paths = [photo.path for _, photos in listing for photo in photos]

        out("Import speed: faces.importer.run_import(FolderSource) vs raw faces.engine.analyse(bytes)")
        out(machine())
        options = services.engine_options()
        out(
            f"albums: {', '.join(f'{album.title} ({len(photos)})' for album, photos in listing)}; "
            f"encode max side {options.max_side_px} px, detector {options.detector}, upsample {options.upsample}"
        )
        out()

        started = time.monotonic()
        engine.warm_up()
        model_load = time.monotonic() - started

        # Raw reference: every file's bytes in memory first, then only analyse() is timed.
        blobs = [Path(path).read_bytes() for path in paths]
        raw_faces = raw_failed = 0
        started = time.monotonic()
        for data in blobs:
            try:
                raw_faces += len(engine.analyse(data, options).faces)
            except engine.EngineError:
                raw_failed += 1
        raw_seconds = time.monotonic() - started
        del blobs

        rows: list[list[object]] = [
            [
                "raw analyse(), 1 process",
                len(paths),
                raw_failed,
                raw_faces,
                f"{raw_seconds:.1f}",
                f"{len(paths) / raw_seconds:.2f}",
                f"{1000 * raw_seconds / len(paths):.0f}",
            ]
        ]
        by_workers: dict[int, float] = {}
        face_counts: dict[int, int] = {}
        for run, workers in enumerate(args.workers, start=1):
            fresh_database(work, run)
            started = time.monotonic()
            summary = run_import(source, workers=workers)
            seconds = time.monotonic() - started
            photos = summary.photos_encoded + summary.photos_failed
            by_workers[workers] = seconds
            face_counts[workers] = summary.faces
            rows.append(
                [
                    f"run_import, workers={workers}",
                    photos,
                    summary.photos_failed,
                    summary.faces,
                    f"{seconds:.1f}",
                    f"{photos / seconds:.2f}",
                    f"{1000 * seconds / max(photos, 1):.0f}",
                ]
            )
            for error in summary.errors[:5]:
                out(f"  workers={workers}: {error}")

        table(["run", "photos", "failed", "faces", "seconds", "photos/s", "ms/photo"], rows)
        out()
        out(f"dlib model load in this process (excluded above): {model_load:.1f} s")
        if 1 in by_workers:
            ratio = by_workers[1] / raw_seconds
            out(f"import/raw time ratio, 1 worker: {ratio:.2f} (import overhead {100 * (ratio - 1):+.0f}%)")
        for workers, seconds in by_workers.items():
            if workers > 1 and 1 in by_workers:
                out(f"speed-up workers={workers} vs 1: {by_workers[1] / seconds:.2f}x")
        if any(count != raw_faces for count in face_counts.values()):
            out(f"NOTE: face counts differ between raw ({raw_faces}) and import runs ({face_counts})")
        else:
            out("face counts identical in raw and every import run")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
