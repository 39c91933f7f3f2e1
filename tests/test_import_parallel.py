"""The in-process parallel import: claims, batched stores, worker deaths, kill -9."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from faces import services
from faces.engine import Analysis, DetectedFace, analyse
from faces.imports.importer import WORKER_DIED, run_import
from faces.models import Album, FaceEncoding, Match, Photo
from faces.sources.folder import FolderSource
from members.services import reference_add
from tests.conftest import import_process_command, import_process_env, make_album_folder
from tests.crashing import POISON_NAME, encode_or_die_on_poison
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


# The first 40 LFW photos in name order show 46 faces (a few have a second face).
LFW_FACES = 46


@pytest.fixture
def lfw_root(tmp_path: Path, faces_dir: Path, media_root: Path) -> Path:
    """40 LFW photos (LFW_FACES faces) in one album folder."""
    lfw = sorted((faces_dir / "lfw_dev" / "images").glob("*/*.jpg"))[:40]
    return make_album_folder(tmp_path / "photos", {"LFW": lfw})


def _photo(album: Album, name: str, status: str = Photo.Status.PENDING) -> Photo:
    return Photo.objects.create(album=album, source_id=name, origin=name, status=status)


def _dead_pid() -> int:
    """A pid that no process has now (a child that has exited and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- claims ---------------------------------------------------------------------
def test_a_photo_is_claimed_by_one_run_only() -> None:
    album = Album.objects.create(source="folder", source_id="A", title="A")
    ids = [_photo(album, f"A/{n}.jpg").pk for n in range(4)]
    done = _photo(album, "A/done.jpg", Photo.Status.DONE).pk

    first = services.photos_claim(photo_ids=ids[:3] + [done], token="host:1:a")
    second = services.photos_claim(photo_ids=ids + [done], token="host:2:b")

    assert first == ids[:3]
    assert second == ids[3:]
    assert services.photo_claim(photo_id=ids[0], token="host:3:c") is False
    assert sorted(Photo.objects.values_list("status", "claimed_by")) == sorted(
        [("claimed", "host:1:a")] * 3 + [("claimed", "host:2:b"), ("done", "")]
    )


def test_stale_claims_become_pending_and_live_ones_stay(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_CLAIM_TIMEOUT_SECONDS = 600
    album = Album.objects.create(source="folder", source_id="A", title="A")
    here = socket.gethostname()
    owners = {
        "alive here": f"{here}:{os.getpid()}:aa",
        "dead here": f"{here}:{_dead_pid()}:bb",
        "elsewhere, recent": "other-host:1234:cc",
        "elsewhere, old": "other-host:1234:dd",
    }
    now = timezone.now()
    for name, token in owners.items():
        photo = _photo(album, name)
        assert services.photo_claim(photo_id=photo.pk, token=token)
    Photo.objects.filter(source_id="elsewhere, old").update(claimed_at=now - dt.timedelta(seconds=601))

    assert services.claims_recover(now=now) == 2

    assert dict(Photo.objects.values_list("source_id", "status")) == {
        "alive here": "claimed",
        "dead here": "pending",
        "elsewhere, recent": "claimed",
        "elsewhere, old": "pending",
    }
    assert Photo.objects.get(source_id="dead here").claimed_by == ""


def test_a_batch_stores_only_the_photos_its_run_still_claims(examples: Path) -> None:
    member = MemberFactory(username="barack")
    reference_add(member=member, data=(examples / "obama.jpg").read_bytes())
    album = Album.objects.create(source="folder", source_id="A", title="A")
    mine, taken, gone = (_photo(album, f"A/{n}.jpg") for n in ("mine", "taken", "gone"))
    services.photos_claim(photo_ids=[mine.pk, gone.pk], token="run-a")
    services.photos_claim(photo_ids=[taken.pk], token="run-b")
    gone_id = gone.pk
    gone.delete()

    analysis = analyse((examples / "obama2.jpg").read_bytes())
    empty = Analysis(sha256="0" * 64, width=10, height=10, faces=[])

    recorded = services.photos_record(
        outcomes=[
            services.Outcome(mine.pk, analysis),
            services.Outcome(taken.pk, empty),
            services.Outcome(gone_id, None, "never stored"),
        ],
        token="run-a",
    )

    assert recorded.stored == {mine.pk: (1, 1)}
    assert recorded.failed == {}
    assert sorted(recorded.skipped) == sorted([taken.pk, gone_id])
    mine.refresh_from_db()
    assert (mine.status, mine.claimed_by, mine.content_hash) == ("done", "", analysis.sha256)
    assert list(Match.objects.values_list("member__username", "face__photo_id")) == [("barack", mine.pk)]
    taken.refresh_from_db()
    assert (taken.status, taken.claimed_by, taken.faces.count()) == ("claimed", "run-b", 0)


def test_a_batch_replaces_old_faces_and_records_failures() -> None:
    album = Album.objects.create(source="folder", source_id="A", title="A")
    photo, broken = _photo(album, "A/p.jpg"), _photo(album, "A/broken.jpg")
    services.photos_claim(photo_ids=[photo.pk, broken.pk], token="run")
    vector = [0.01] * 128
    face = DetectedFace(top=1, right=2, bottom=3, left=0, encoding=np.array(vector))
    old = FaceEncoding(photo=photo, top=9, right=9, bottom=9, left=9)
    old.set_encoding(vector)
    old.save()

    recorded = services.photos_record(
        outcomes=[
            services.Outcome(photo.pk, Analysis(sha256="a" * 64, width=4, height=5, faces=[face, face])),
            services.Outcome(broken.pk, None, "not a readable image (UnidentifiedImageError)"),
        ],
        token="run",
    )

    assert recorded.stored == {photo.pk: (2, 0)}
    assert recorded.failed == {broken.pk: "not a readable image (UnidentifiedImageError)"}
    assert list(FaceEncoding.objects.values_list("photo_id", "top", "right", "bottom", "left")) == [
        (photo.pk, 1, 2, 3, 0),
        (photo.pk, 1, 2, 3, 0),
    ]
    assert sorted(Photo.objects.values_list("source_id", "status", "error", "width", "height")) == [
        ("A/broken.jpg", "failed", "not a readable image (UnidentifiedImageError)", None, None),
        ("A/p.jpg", "done", "", 4, 5),
    ]


# --- worker deaths ----------------------------------------------------------------
@pytest.mark.slow
def test_a_worker_killed_from_outside_loses_no_photo(lfw_root: Path) -> None:
    """A worker killed mid-import (by the OOM killer, say): its photos are run again."""
    killed: list[int] = []

    def kill_a_worker(done: int, total: int) -> None:
        if done == 3 and not killed:
            killed.append(_kill_one_worker())

    summary = run_import(FolderSource(lfw_root), workers=2, progress=kill_a_worker)

    assert killed and killed[0] > 0
    assert (summary.photos_encoded, summary.photos_failed, summary.errors) == (40, 0, [])
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 40
    assert FaceEncoding.objects.count() == summary.faces == LFW_FACES


@pytest.mark.slow
def test_a_photo_that_kills_its_worker_fails_alone(lfw_root: Path, examples: Path) -> None:
    (lfw_root / "LFW" / POISON_NAME).write_bytes((examples / "obama.jpg").read_bytes())

    summary = run_import(FolderSource(lfw_root), workers=2, encode=encode_or_die_on_poison)

    assert (summary.photos_encoded, summary.photos_failed) == (40, 1)
    assert summary.errors == [f"photo LFW/{POISON_NAME}: {WORKER_DIED}"]
    assert dict(Photo.objects.exclude(status=Photo.Status.DONE).values_list("source_id", "status")) == {
        f"LFW/{POISON_NAME}": "failed"
    }
    assert not Photo.objects.filter(status=Photo.Status.CLAIMED).exists()
    # The next run tries it again (it may have been an out-of-memory moment).
    again = run_import(FolderSource(lfw_root), workers=1)
    assert (again.photos_new, again.photos_changed, again.photos_encoded, again.photos_failed) == (0, 1, 1, 0)


def _kill_one_worker() -> int:
    """SIGKILL one of this process's spawned pool workers; its pid."""
    for pid in _spawned_children(os.getpid()):
        os.kill(pid, signal.SIGKILL)
        return pid
    return 0


def _spawned_children(parent: int) -> list[int]:
    """Pids of `parent`'s multiprocessing-spawned children."""
    found = []
    for entry in sorted(Path("/proc").iterdir(), key=lambda p: p.name):
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Whether a process exists and has not exited (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- separate import processes -------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_encode_every_photo_once(lfw_root: Path, media_root: Path) -> None:
    # Sync the album first, so that both runs only race for the photos.
    album = Album.objects.create(source="folder", source_id="LFW", title="LFW", location=str(lfw_root))
    for path in sorted((lfw_root / "LFW").iterdir()):
        _photo(album, f"LFW/{path.name}")
    env = import_process_env(media_root)
    runs = [
        subprocess.Popen(import_process_command(lfw_root, 1), env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0]
    encoded = [int(out.split(" encoded")[0].rsplit(" ", 1)[1]) for out in outputs]
    faces = [int(out.split(" faces")[0].rsplit(" ", 1)[1]) for out in outputs]
    assert (sum(encoded), sum(faces)) == (40, LFW_FACES), outputs  # no photo encoded by both
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 40
    assert FaceEncoding.objects.count() == LFW_FACES


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_parallel_import_leaves_no_worker_and_resumes(lfw_root: Path, media_root: Path) -> None:
    env = import_process_env(media_root)
    process = subprocess.Popen(import_process_command(lfw_root, 2), env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while Photo.objects.filter(status=Photo.Status.DONE).count() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _spawned_children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(workers) == 2
    assert Photo.objects.exclude(status=Photo.Status.DONE).exists(), "the import finished before the kill"
    assert Photo.objects.filter(status=Photo.Status.CLAIMED).exists()

    # The orphaned workers notice and leave (within PARENT_CHECK_S).
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in workers if _running(pid)] == []

    out = subprocess.run(
        import_process_command(lfw_root, 2), env=env, check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    assert "0 failed" in out
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 40
    assert not Photo.objects.exclude(claimed_by="").exists()
    assert FaceEncoding.objects.count() == LFW_FACES


@pytest.mark.parametrize("timeout", ["0", "-5"])
def test_import_refuses_a_timeout_that_is_not_positive_before_touching_anything(
    timeout: str, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match=r"^--timeout must be more than 0 seconds$"):
        call_command("import_albums", "--folder", str(tmp_path), "--timeout", timeout, "--no-progress")
