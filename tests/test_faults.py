"""Injected faults: the import killed with SIGKILL at random moments, its
PostgreSQL server restarted under it, the website down for a whole run.

Each ends with a normal run, after which the database holds exactly what one
clean import holds: the same photos, faces, matches and stored files, and no
duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from django.core.management import CommandError, call_command

from faces.models import Album, FaceEncoding, Photo
from members.services import reference_add
from tests.conftest import REPO, import_process_command, import_process_env, make_album_folder
from tests.factories import MemberFactory
from tests.fake_concrexit import FakeConcrexit
from tests.test_import_concrexit import tiny
from tests.test_import_folder import snapshot

KILLS = 20
KILL_SEED = 20261126
PHOTOS = ("obama2.jpg", "biden.jpg", "two_people.jpg", "obama3.jpg", "kit_with_rose.jpg")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Faces in the first 12 .jpg files of face_recognition_examples with the
# default engine options (one clean import of them stores this many).
EXPECTED_FACES = 13


def media_files(media_root: Path) -> dict[str, str]:
    """Every stored photo file and the SHA-256 of its content."""
    return {
        str(p.relative_to(media_root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((media_root / "photos").rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_twenty_kills_at_random_moments_each_resume_to_one_clean_import(
    tmp_path: Path, examples: Path, media_root: Path
) -> None:
    """SIGKILL the whole import (process group) at 20 seeded random moments that land.

    A moment is "after k photos are stored, plus a random 0–0.4 s", k drawn
    from 0 … len(PHOTOS) - 2, so kills land during start-up, the album sync,
    an encode and a store. Each kill is followed by a normal run; the
    database and the stored files must then equal a clean import's.
    """
    root = make_album_folder(
        tmp_path / "photos",
        {"Party": [examples / n for n in PHOTOS[:3]], "Gala": [examples / n for n in PHOTOS[3:]]},
    )
    member = MemberFactory(username="barack")
    reference_add(member=member, data=(examples / "obama.jpg").read_bytes())
    env = import_process_env(media_root, LOG_LEVEL="CRITICAL")
    command = import_process_command(root)

    subprocess.run(command, env=env, check=True, capture_output=True)
    clean, clean_files = snapshot(), media_files(media_root)
    assert len(clean["photos"]) == len(PHOTOS) and len(clean["faces"]) == 7 and len(clean["matches"]) == 3

    rng = random.Random(KILL_SEED)
    landed: list[int] = []
    attempts = 0
    # Photos are stored in batches, so "k photos stored" can come with the
    # last batch; a draw whose import ends before the kill is drawn again.
    while len(landed) < KILLS:
        attempts += 1
        assert attempts <= 3 * KILLS, (
            f"only {len(landed)} of {attempts - 1} kills landed before the import ended"
        )
        Album.objects.all().delete()
        shutil.rmtree(media_root / "photos")
        target, delay = rng.randrange(len(PHOTOS) - 1), rng.uniform(0.0, 0.4)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        while Photo.objects.filter(status=Photo.Status.DONE).count() < target and process.poll() is None:
            time.sleep(0.01)
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):  # it may have ended and been reaped
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
        if code != 0:
            assert code == -signal.SIGKILL, f"the import failed on its own (exit status {code})"
            landed.append(Photo.objects.filter(status=Photo.Status.DONE).count())

        subprocess.run(command, env=env, check=True, capture_output=True)

        assert snapshot() == clean
        assert media_files(media_root) == clean_files
        assert Photo.objects.count() == len(PHOTOS)
        assert FaceEncoding.objects.count() == len(clean["faces"])
    # The kills did land at different stages: before any photo, and between photos.
    assert landed.count(0) >= 2 and any(0 < done < len(PHOTOS) for done in landed), landed


# --- PostgreSQL restarted under a running import ------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, list[str]]]:
    """A throw-away PostgreSQL 15 cluster on a free port (the shared server is not touched).

    Yields its database URL and the pg_ctl command prefix (data dir and options set).
    """
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL server binaries not found in {PG_BIN}")
    # Under /tmp itself: pytest's tmp_path is private to root, the postgres user cannot enter it.
    base = Path(tempfile.mkdtemp(prefix="throwback-pg-"))
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    # -l: the server logs to a file, not to pg_ctl's stdout (which would never close).
    pg_ctl = _as_postgres(
        [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", options, "-w", "-t", "60"]
    )
    subprocess.run([*pg_ctl, "start"], check=True, capture_output=True)
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute("CREATE DATABASE throwback")
        admin.close()
        yield f"postgres://postgres@127.0.0.1:{port}/throwback", pg_ctl
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _value(database_url: str, sql: str) -> object:
    """The first column of the first row a query gives on the own cluster's database."""
    port = int(database_url.rsplit(":", 1)[1].split("/")[0])
    db = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="throwback")
    try:
        cursor = db.cursor()
        cursor.execute(sql)
        return cursor.fetchone()[0]
    finally:
        db.close()


def _query(database_url: str, sql: str) -> int:
    return int(str(_value(database_url, sql)))


def _done(database_url: str) -> int:
    try:
        return _query(database_url, "SELECT count(*) FROM faces_photo WHERE status = 'done'")
    except psycopg2.Error:
        return 0  # not migrated yet, or restarting


def _import_twelve_until_two_are_stored(
    database_url: str, env: dict[str, str], tmp_path: Path, examples: Path
) -> tuple[subprocess.Popen[str], Path, list[str]]:
    """Migrate the own cluster's database, start an import of 12 photos in a subprocess and wait
    until 2 are stored; the running process, the photo folder and the photos' names."""
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    names = sorted(p.name for p in examples.iterdir() if p.suffix == ".jpg")[:12]
    root = make_album_folder(tmp_path / "photos", {"A": [examples / n for n in names]})
    process = subprocess.Popen(
        import_process_command(root), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while _done(database_url) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return process, root, names


@pytest.mark.slow
def test_a_postgresql_restart_mid_import_fails_cleanly_and_the_next_run_completes(
    own_postgres: tuple[str, list[str]], tmp_path: Path, examples: Path
) -> None:
    database_url, pg_ctl = own_postgres
    media = tmp_path / "media"
    env = import_process_env(media, database_url=database_url, LOG_LEVEL="CRITICAL")
    process, root, names = _import_twelve_until_two_are_stored(database_url, env, tmp_path, examples)
    subprocess.run([*pg_ctl, "-m", "fast", "restart"], check=True, capture_output=True)
    out, err = process.communicate(timeout=300)

    # Every outcome is clean: the run stops with a CommandError (the server
    # was still down when the importer next needed it), or it recovers, with
    # any photo whose transaction the restart broke recorded as failed (none
    # when the restart fell between two batches and the store was retried).
    assert "Traceback" not in err
    if process.returncode == 1:
        assert (
            err.strip()
            .splitlines()[-1]
            .startswith("CommandError: Import stopped: lost the database connection")
        )
        assert err.strip().endswith("run the command again to continue.")
    else:
        assert process.returncode == 0, out + err
        lost = [line for line in err.splitlines() if "could not be stored: " in line]
        assert f"{len(lost)} failed;" in out, out + err
    stopped_at = _done(database_url)
    assert stopped_at >= 2

    again = subprocess.run(import_process_command(root), env=env, capture_output=True, text=True, check=True)

    assert f"{len(names) - stopped_at} encoded, 0 failed" in again.stdout
    assert _done(database_url) == len(names)
    assert _query(database_url, "SELECT count(*) FROM faces_photo") == len(names)
    duplicates = 'SELECT count(*) FROM (SELECT photo_id, top, "left" FROM faces_faceencoding GROUP BY 1, 2, 3 HAVING count(*) > 1) d'
    assert _query(database_url, duplicates) == 0
    assert _query(database_url, "SELECT count(*) FROM faces_faceencoding") == EXPECTED_FACES


# --- the website down ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_site_down_for_a_whole_run_stops_it_and_changes_nothing(
    fake_concrexit: FakeConcrexit, media_root: Path
) -> None:
    fake_concrexit.add_album("expo", "Expo", [tiny("red"), tiny("green")])
    call_command("import_albums", workers=1, no_progress=True, stdout=io.StringIO())
    before = list(Photo.objects.values_list("id", "status", "content_hash"))
    fake_concrexit.down = True
    with pytest.raises(CommandError, match=r"^Import failed: .*albums/\?limit=50&offset=0: HTTP 503$"):
        call_command("import_albums", workers=1, no_progress=True, stdout=io.StringIO())
    assert list(Photo.objects.values_list("id", "status", "content_hash")) == before
    assert not Album.objects.filter(missing=True).exists()


@pytest.mark.django_db
def test_photo_files_down_for_a_whole_run_fail_every_photo_until_the_next_run(
    fake_concrexit: FakeConcrexit, media_root: Path, examples: Path
) -> None:
    """The API answers but every file download gets 503: all recorded failed, all imported next run."""
    member = MemberFactory(username="barack")
    reference_add(member=member, data=(examples / "obama.jpg").read_bytes())
    pks = fake_concrexit.add_album("expo", "Expo", [examples / "obama2.jpg", tiny("red"), tiny("green")])
    fake_concrexit.fail("/media/", 503, times=3)  # every download of this run (no retries)

    out, err = io.StringIO(), io.StringIO()
    call_command("import_albums", workers=1, no_progress=True, stdout=out, stderr=err)

    assert "3 new, 0 changed or retried, 0 unchanged, 0 removed photos; 0 encoded, 3 failed" in out.getvalue()
    assert sorted(Photo.objects.values_list("source_id", "status", "error")) == sorted(
        (str(pk), "failed", "download failed: HTTP 503") for pk in pks
    )
    assert err.getvalue() == "".join(f"  photo {pk}: download failed: HTTP 503\n" for pk in pks)

    out = io.StringIO()
    call_command("import_albums", workers=1, no_progress=True, stdout=out)
    assert "0 new, 3 changed or retried, 0 unchanged, 0 removed photos; 3 encoded, 0 failed" in out.getvalue()
    assert set(Photo.objects.values_list("status", flat=True)) == {"done"}
    assert Photo.objects.matched_to(member).count() == 1


@pytest.mark.slow
def test_the_database_gone_mid_import_ends_in_one_clean_line(
    own_postgres: tuple[str, list[str]], tmp_path: Path, examples: Path
) -> None:
    """PostgreSQL stopped for good after 2 photos are stored, at the default log level.

    Before: three tracebacks (161 lines) on stderr above the CommandError,
    one per failed attempt to store the batch and its photos one by one.
    """
    database_url, pg_ctl = own_postgres
    env = import_process_env(tmp_path / "media", database_url=database_url)  # LOG_LEVEL as deployed
    process, root, names = _import_twelve_until_two_are_stored(database_url, env, tmp_path, examples)
    subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=True, capture_output=True)
    out, err = process.communicate(timeout=300)

    assert process.returncode == 1, out + err
    assert out == ""
    (line,) = err.splitlines()
    # What psycopg2 says depends on the moment: "server closed the connection
    # unexpectedly", "connection refused", or "connection already closed".
    assert re.fullmatch(
        r"CommandError: Import stopped: lost the database connection \((OperationalError|InterfaceError): .+\)\. "
        r"Photos not yet stored stay pending: run the command again to continue\. \(The import history "
        r"could not record this stop: the next run marks it interrupted\.\)",
        line,
    ), line
    subprocess.run([*pg_ctl, "start"], check=True, capture_output=True)
    assert _query(database_url, "SELECT count(*) FROM faces_importrun WHERE finished IS NULL") == 1

    # The next run (the server back) records the cut-off run as interrupted, and completes.
    again = subprocess.run(import_process_command(root), env=env, capture_output=True, text=True, check=True)

    assert again.stderr.startswith("  run 1 (started ")
    assert ") was interrupted: its process (" in again.stderr
    assert "already pending" in again.stdout
    assert _done(database_url) == len(names)
    error = str(_value(database_url, "SELECT error FROM faces_importrun WHERE id = 1"))
    assert error.startswith("interrupted: its process (") and "cut off from the database" in error
