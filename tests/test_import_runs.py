"""An import run that cannot hang, hide everything, or leave a false history.

- The run's deadline (THROWBACK_IMPORT_DEADLINE_SECONDS) stops it cleanly:
  what is encoded is stored, its claims handed back, the stop recorded.
- A run that would hide all (or too many) of a source's albums refuses.
- SIGTERM stops a run like Ctrl-C; a run killed with kill -9 (or cut off
  from the database) is recorded as interrupted by the next run.
- A summary counts every photo: those already pending, those another run holds.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from faces import services
from faces.imports import importer
from faces.imports.control import OutOfTime, RunControl
from faces.imports.importer import run_import
from faces.models import Album, ImportRun, Photo
from faces.sources.folder import FolderSource
from tests.conftest import import_process_command, import_process_env, make_album_folder, outer_timeout
from tests.fake_concrexit import FakeConcrexit
from tests.test_import_concrexit import ALBUMS, FIRST_PAGE, tiny
from tests.test_import_folder import snapshot

HERE = socket.gethostname()


def dead_pid() -> int:
    """A pid that no process has now (a child that has exited and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def command(**options: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_albums", workers=1, no_progress=True, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def four_photos(tmp_path: Path, examples: Path, media_root: Path) -> Path:
    names = ("obama2.jpg", "biden.jpg", "obama3.jpg", "kit_with_rose.jpg")
    return make_album_folder(tmp_path / "photos", {"Party": [examples / n for n in names]})


# --- the run's deadline ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_run_out_of_time_stores_what_is_encoded_and_hands_back_the_rest(
    four_photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock jumps past the deadline once two photos are stored: the next check stops the run.

    Every result is stored as it comes (a batch of one): with the usual batch
    of a second, a fast machine encodes all four before the first store, the
    run ends without another check and nothing is left to stop.
    """
    monkeypatch.setattr(importer, "BATCH_PHOTOS", 1)

    def clock() -> float:
        return 100.0 if Photo.objects.filter(status=Photo.Status.DONE).count() >= 2 else 0.0

    control = RunControl(token=services.claim_token(), deadline_s=60, clock=clock)

    with outer_timeout(300), pytest.raises(OutOfTime) as caught:
        run_import(FolderSource(four_photos), workers=1, control=control)

    stopped = caught.value
    assert str(stopped) == (
        "stopped after 1 min, the run's limit (THROWBACK_IMPORT_DEADLINE_SECONDS); "
        "photos not yet stored stay pending for the next run"
    )
    done = Photo.objects.filter(status=Photo.Status.DONE).count()
    assert done >= 2
    assert stopped.summary is not None
    assert (stopped.summary.photos_new, stopped.summary.photos_encoded) == (4, done)
    # Nothing is left claimed: what was not stored is pending for the next run.
    assert sorted(Photo.objects.values_list("status", flat=True)) == sorted(
        ["done"] * done + ["pending"] * (4 - done)
    )


@pytest.mark.django_db
def test_a_run_past_its_deadline_stops_records_why_and_the_next_run_finishes(
    fake_concrexit: FakeConcrexit, media_root: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    """The second album's answer takes longer than the run may (a byte every 3 ms, within
    the request's own deadline): the run stops before encoding, exit status 1."""
    settings.THROWBACK_IMPORT_DEADLINE_SECONDS = 1
    settings.THALIA_TIMEOUT_SECONDS = 60
    fake_concrexit.add_album("expo", "Expo", [tiny("red")])
    fake_concrexit.add_album("fair", "Fair", [tiny("green"), tiny("blue")])
    fake_concrexit.slow_loris(f"{ALBUMS}fair/", interval_s=0.003)
    out = io.StringIO()

    with outer_timeout(120), pytest.raises(CommandError) as caught:
        call_command("import_albums", workers=1, no_progress=True, stdout=out, stderr=io.StringIO())

    reason = (
        "stopped after 1 s, the run's limit (THROWBACK_IMPORT_DEADLINE_SECONDS); "
        "photos not yet stored stay pending for the next run"
    )
    assert (str(caught.value), caught.value.returncode) == (f"Import {reason}.", 1)
    assert out.getvalue().startswith(
        "Imported 2 albums: 3 new, 0 changed or retried, 0 unchanged, 0 removed photos; 0 encoded, 0 failed; "
    )
    run = ImportRun.objects.get()
    assert (run.error, run.albums, run.photos_new, run.photos_encoded) == (reason, 2, 3, 0)
    assert run.finished is not None
    assert set(Photo.objects.values_list("status", flat=True)) == {"pending"}

    settings.THROWBACK_IMPORT_DEADLINE_SECONDS = 0  # no limit
    out, _ = command()
    assert "0 new, 0 changed or retried, 0 unchanged, 0 removed photos, 3 already pending; 3 encoded" in out


def test_the_run_control_beats_every_minute_and_stops_at_its_deadline() -> None:
    now = [0.0]
    beats: list[float] = []
    control = RunControl(token="t", deadline_s=150, beat=lambda: beats.append(now[0]), clock=lambda: now[0])

    for moment in (30.0, 59.9, 60.0, 61.0, 119.0, 120.5, 149.9):
        now[0] = moment
        control.check()
    assert beats == [60.0, 120.5]
    assert control.wait_s() == pytest.approx(0.1)  # the deadline comes before the next beat
    now[0] = 150.0
    with pytest.raises(OutOfTime, match=r"^stopped after 150 s, the run's limit"):
        control.check()
    assert RunControl(token="t", clock=lambda: 0.0).wait_s() == 60.0  # no deadline: the next beat


# --- an empty listing does not hide every album --------------------------------------------------------
EMPTY_PAGE = json.dumps({"count": 0, "next": None, "previous": None, "results": []}).encode()


def page_of(fake: FakeConcrexit, slugs: list[str]) -> bytes:
    """The first album page as the site answers it, with only these albums."""
    import requests

    page = requests.get(
        f"{fake.base_url}{FIRST_PAGE}", headers={"Authorization": f"Bearer {fake.token}"}, timeout=10
    ).json()
    page["results"] = [album for album in page["results"] if album["slug"] in slugs]
    page["count"] = len(page["results"])
    return json.dumps(page).encode()


@pytest.fixture
def four_albums(fake_concrexit: FakeConcrexit, media_root: Path) -> FakeConcrexit:
    for slug in ("expo", "fair", "gala", "hike"):
        fake_concrexit.add_album(slug, slug.title(), [tiny("red")])
    command()
    return fake_concrexit


@pytest.mark.django_db
def test_a_valid_empty_album_list_hides_nothing_and_fails_the_run(four_albums: FakeConcrexit) -> None:
    """Before: "Imported 0 albums", exit status 0, and every album hidden (every member's photos gone)."""
    before = snapshot()
    four_albums.fail(FIRST_PAGE, 200, body=EMPTY_PAGE)

    with pytest.raises(CommandError) as caught:
        command()

    reason = (
        f"the website {four_albums.base_url} lists 0 albums: this run would hide all 4 albums imported from it. "
        "Nothing was changed. Does the website show these albums to Throwback's member? "
        "If the albums really are gone, run `import_albums --allow-missing`."
    )
    assert str(caught.value) == f"Import failed: {reason}"
    assert ImportRun.objects.order_by("-id").first().error == reason  # type: ignore[union-attr]
    assert snapshot() == before
    assert not Album.objects.filter(missing=True).exists()


@pytest.mark.django_db
def test_allow_missing_hides_the_albums_when_they_really_are_gone(four_albums: FakeConcrexit) -> None:
    four_albums.fail(FIRST_PAGE, 200, body=EMPTY_PAGE)

    out, _ = command(allow_missing=True)

    assert out.startswith("Imported 0 albums: ")
    assert list(Album.objects.values_list("missing", flat=True)) == [True] * 4
    assert ImportRun.objects.order_by("-id").first().error == ""  # type: ignore[union-attr]


@pytest.mark.django_db
def test_more_than_the_share_of_albums_gone_is_refused_and_up_to_it_allowed(
    four_albums: FakeConcrexit, settings
) -> None:  # type: ignore[no-untyped-def]
    assert settings.THROWBACK_IMPORT_MAX_MISSING_SHARE == 0.5
    four_albums.fail(FIRST_PAGE, 200, body=page_of(four_albums, ["expo"]))

    with pytest.raises(CommandError) as caught:
        command()

    assert str(caught.value) == (
        f"Import failed: the website {four_albums.base_url} lists 1 albums: this run would hide 3 of the 4 albums "
        "imported from it, more than THROWBACK_IMPORT_MAX_MISSING_SHARE (50%) allows. Nothing was changed. "
        "Does the website show these albums to Throwback's member? "
        "If the albums really are gone, run `import_albums --allow-missing`."
    )
    assert not Album.objects.filter(missing=True).exists()

    four_albums.fail(FIRST_PAGE, 200, body=page_of(four_albums, ["expo", "fair"]))
    out, _ = command()
    assert out.startswith("Imported 2 albums: ")
    assert sorted(Album.objects.values_list("source_id", "missing")) == [
        ("expo", False),
        ("fair", False),
        ("gala", True),
        ("hike", True),
    ]


@pytest.mark.django_db
def test_an_empty_folder_where_the_share_was_not_mounted_hides_nothing(
    tmp_path: Path, examples: Path, media_root: Path
) -> None:
    root = make_album_folder(
        tmp_path / "share", {"Party": [examples / "obama2.jpg"], "Gala": [examples / "biden.jpg"]}
    )
    command(folder=str(root))
    for album in ("Party", "Gala"):
        for file in (root / album).iterdir():
            file.unlink()
        (root / album).rmdir()  # the mount point is there, its share is not

    with pytest.raises(CommandError) as caught:
        command(folder=str(root))

    assert str(caught.value) == (
        f"Import failed: the folder {root} lists 0 albums: this run would hide all 2 albums imported from it. "
        "Nothing was changed. Is the folder (its share or disk) mounted? "
        "If the albums really are gone, run `import_albums --allow-missing`."
    )
    assert not Album.objects.filter(missing=True).exists()
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 2

    command(folder=str(root), allow_missing=True)
    assert list(Album.objects.values_list("missing", flat=True)) == [True, True]


# --- photos another run holds are counted and named ----------------------------------------------------
@pytest.mark.django_db
def test_photos_claimed_by_a_live_run_elsewhere_are_counted_and_named(four_photos: Path) -> None:
    """Before: "0 new … 4 unchanged …; 1 encoded": the 3 held photos were in no category."""
    command(folder=str(four_photos))
    services.photos_reencode(photo_ids=list(Photo.objects.values_list("id", flat=True)))
    ids = list(Photo.objects.order_by("id").values_list("id", flat=True))
    other = ImportRun.objects.create(
        started=timezone.now(), heartbeat=timezone.now(), source="folder", owner="web2:4242:ab"
    )
    assert services.photos_claim(photo_ids=ids[:2], token="web2:4242:ab") == ids[:2]
    assert services.photos_claim(photo_ids=ids[2:3], token="worker3:77:cd") == ids[2:3]  # a Celery worker
    since_run = timezone.localtime(Photo.objects.get(pk=ids[0]).claimed_at)
    since_worker = timezone.localtime(Photo.objects.get(pk=ids[2]).claimed_at)

    out, err = command(folder=str(four_photos))

    assert (
        "0 new, 0 changed or retried, 0 unchanged, 0 removed photos, 4 already pending; "
        "1 encoded, 0 failed, 3 taken by another run;"
    ) in out
    assert err == (
        f"  2 photos claimed by run {other.pk} on host web2 since {since_run:%Y-%m-%d %H:%M %Z}: "
        "not encoded by this run\n"
        f"  1 photo claimed by process 77 (a Celery worker?) on host worker3 since {since_worker:%Y-%m-%d %H:%M %Z}: "
        "not encoded by this run\n"
    )
    run = ImportRun.objects.order_by("-id").first()
    assert run is not None and (run.photos_resumed, run.photos_encoded) == (4, 1)
    assert sorted(Photo.objects.values_list("status", "claimed_by")) == sorted(
        [("claimed", "web2:4242:ab")] * 2 + [("claimed", "worker3:77:cd"), ("done", "")]
    )
    assert ImportRun.objects.get(pk=other.pk).finished is None  # alive: its heartbeat is recent


# --- runs that never recorded their end --------------------------------------------------------------
@pytest.mark.django_db
def test_the_next_run_closes_only_the_rows_of_runs_that_are_gone(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_CLAIM_TIMEOUT_SECONDS = 600
    now = timezone.now()
    old = now - dt.timedelta(seconds=601)
    me = f"{HERE}:{os.getpid()}:me"
    rows = {
        "dead here": (f"{HERE}:{dead_pid()}:aa", now),
        "my pid, another token (a restarted container)": (f"{HERE}:{os.getpid()}:bb", now),
        "alive here": (f"{HERE}:{os.getppid()}:cc", now),
        "alive here, silent too long (its pid taken by another program)": (f"{HERE}:{os.getppid()}:dd", old),
        "elsewhere, beating": ("web2:1234:ee", now),
        "elsewhere, silent too long": ("web2:1234:ff", old),
        "before owners, recent": ("", now),
        "before owners, old": ("", old),
    }
    for name, (owner, beat) in rows.items():
        ImportRun.objects.create(
            started=beat, heartbeat=beat if owner else None, source="folder", location=name, owner=owner
        )
    album = Album.objects.create(source="folder", source_id="A", title="A")
    photo = Photo.objects.create(album=album, source_id="A/1.jpg", origin="A/1.jpg")
    services.photos_claim(photo_ids=[photo.pk], token="web2:1234:ff")
    this = services.import_run_start(source="folder", location="now", owner=me)

    closed = services.import_runs_close_interrupted(by=this, now=now)

    assert sorted(run.location for run in closed) == sorted(
        [
            "dead here",
            "my pid, another token (a restarted container)",
            "alive here, silent too long (its pid taken by another program)",
            "elsewhere, silent too long",
            "before owners, old",
        ]
    )
    still_open = ImportRun.objects.filter(finished__isnull=True).exclude(pk=this.pk)
    assert sorted(still_open.values_list("location", flat=True)) == sorted(
        ["alive here", "elsewhere, beating", "before owners, recent"]
    )
    elsewhere = ImportRun.objects.get(location="elsewhere, silent too long")
    assert elsewhere.finished == old  # its last sign of life
    assert elsewhere.error == (
        "interrupted: its process (web2, pid 1234) ended without recording its end (killed, out of memory, "
        f"a power cut, or cut off from the database); noticed by run {this.pk}, which handed back the 1 "
        "photo it still claimed. What it stored is kept; its counts are unknown."
    )
    photo.refresh_from_db()
    assert (photo.status, photo.claimed_by) == ("pending", "")


def wait_for(condition, seconds: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.05)


def start_import(root: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`import_albums --folder root` in its own process group, its output piped."""
    return subprocess.Popen(
        import_process_command(root),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def import_to_the_end(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = import_process_command(root)
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=600)


@pytest.fixture
def twelve_photos(tmp_path: Path, examples: Path, media_root: Path) -> Path:
    names = sorted(p.name for p in examples.iterdir() if p.suffix == ".jpg")[:12]
    return make_album_folder(tmp_path / "photos", {"A": [examples / n for n in names]})


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigterm_stops_the_run_cleanly_and_the_next_run_counts_what_it_left(
    twelve_photos: Path, media_root: Path
) -> None:
    """docker stop and systemd send SIGTERM to the command's process. Before: it died at once,
    its row kept `finished` empty and its photos stayed claimed until the next run."""
    env = import_process_env(media_root, LOG_LEVEL="WARNING")
    process = start_import(twelve_photos, env)
    wait_for(lambda: Photo.objects.filter(status=Photo.Status.DONE).count() >= 2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)

    reason = "stopped by SIGTERM; photos not yet stored stay pending for the next run"
    assert process.returncode == 128 + signal.SIGTERM, out + err
    assert err.splitlines()[-1] == f"CommandError: Import {reason}."
    assert "Traceback" not in err
    done = Photo.objects.filter(status=Photo.Status.DONE).count()
    assert done < 12, "the import finished before SIGTERM"
    assert f"12 new, 0 changed or retried, 0 unchanged, 0 removed photos; {done} encoded, 0 failed;" in out
    run = ImportRun.objects.get()
    assert (run.error, run.photos_encoded, run.finished is not None) == (reason, done, True)
    assert set(Photo.objects.exclude(status=Photo.Status.DONE).values_list("status", flat=True)) == {
        "pending"
    }

    again = import_to_the_end(twelve_photos, env)

    assert (
        f"0 new, 0 changed or retried, {done} unchanged, 0 removed photos, {12 - done} already pending; "
        f"{12 - done} encoded, 0 failed;"
    ) in again.stdout
    assert again.stderr == ""  # the stopped run recorded its own end: nothing to close


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_killed_with_kill_9_is_recorded_as_interrupted_by_the_next(
    twelve_photos: Path, media_root: Path
) -> None:
    env = import_process_env(media_root, LOG_LEVEL="WARNING")
    process = start_import(twelve_photos, env)
    wait_for(lambda: Photo.objects.filter(status=Photo.Status.DONE).count() >= 1)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    killed = ImportRun.objects.get()
    assert killed.finished is None
    done = Photo.objects.filter(status=Photo.Status.DONE).count()
    assert done < 12, "the import finished before the kill"

    again = import_to_the_end(twelve_photos, env)

    killed.refresh_from_db()
    assert killed.finished == killed.heartbeat
    assert killed.error.startswith(
        f"interrupted: its process ({HERE}, pid {process.pid}) ended without recording its end (killed, "
    )
    assert again.stderr.startswith(f"  run {killed.pk} (started ")
    assert f") was {killed.error}\n" in again.stderr
    assert (
        f"{done} unchanged, 0 removed photos, {12 - done} already pending; {12 - done} encoded"
        in again.stdout
    )
