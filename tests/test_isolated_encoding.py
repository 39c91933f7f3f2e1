"""Selfies encoded in a child process per upload (THROWBACK_ENCODE_SELFIES_IN=process).

The web process never loads dlib's models; the child's answer equals the
in-process engine's; a child that is killed, crashes or runs out of time is
a clear refusal that loses nothing. The test settings encode inline for speed,
so every test here asks for the child process itself.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from django.core.checks import run_checks
from django.db import connection

from faces import engine, isolated
from members.models import Member, ReferenceFace
from members.services import (
    ConsentWithdrawn,
    EncodingFailed,
    EncodingTimedOut,
    member_delete,
    member_face_data_delete,
    reference_add,
)
from tests.conftest import REPO
from tests.factories import MemberFactory, member_with_stored_selfie
from tests.test_engine_settings import settings_values
from tests.test_hostile_uploads import alerts, api_client, api_upload, form_upload, stored_state

DLIB_MODULES = ("face_recognition", "face_recognition_models", "dlib", "_dlib_pybind11")


@pytest.fixture
def in_process(settings) -> None:  # type: ignore[no-untyped-def]
    """Encode selfies in a child process, as production does by default."""
    settings.THROWBACK_ENCODE_SELFIES_IN = "process"


@pytest.fixture
def two_seconds(settings) -> None:  # type: ignore[no-untyped-def]
    """A child process is given two seconds."""
    settings.THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS = 2


@pytest.fixture
def member(media_root: Path, in_process: None) -> Member:
    """A member with one stored selfie, matched in one stored photo."""
    return member_with_stored_selfie()


def encoding_children() -> list[int]:
    """Process ids of this process's running `python -m faces.isolated` children."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue  # the thread has ended
        for pid in children:
            try:
                arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"faces.isolated" in arguments:
                found.append(int(pid))
    return found


@contextmanager
def signal_the_encoder(signum: signal.Signals) -> Iterator[list[int]]:
    """Send signum to the encoding child process as soon as it runs (as the OOM killer would).

    Yields a list that holds the child's pid once it was signalled.
    """
    signalled: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for pid in encoding_children():
                os.kill(pid, signum)
                signalled.append(pid)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield signalled
    finally:
        stop.set()
        watcher.join()


@pytest.fixture
def face(examples: Path) -> bytes:
    """A real photo with one face, 853×480."""
    return (examples / "obama-480p.jpg").read_bytes()


def test_the_child_process_finds_exactly_what_the_engine_finds_in_process(examples: Path) -> None:
    image = engine.load_image((examples / "two_people.jpg").read_bytes(), max_pixels=50_000_000)
    options = engine.EngineOptions(max_side_px=400, upsample=0, jitters=1, landmarks="small")
    inline = engine.find_faces(image, options)
    child = isolated.find_faces(image, options, timeout_s=120)
    assert len(inline) == 2
    assert [(f.top, f.right, f.bottom, f.left) for f in child] == [
        (f.top, f.right, f.bottom, f.left) for f in inline
    ]
    for ours, theirs in zip(child, inline, strict=True):
        assert ours.encoding.dtype == np.float32
        assert np.array_equal(ours.encoding, theirs.encoding)  # bit for bit


@pytest.mark.django_db(transaction=True)
def test_a_selfie_upload_does_not_load_dlib_in_the_web_process(examples: Path, tmp_path: Path) -> None:
    """A clean interpreter, as a gunicorn worker: upload through the API, then look at sys.modules."""
    database = connection.settings_dict
    code = f"""
import json, sys
import django
django.setup()
from django.test.utils import setup_test_environment, override_settings
setup_test_environment()
from django.test import Client
from members.models import Member
from members.services import consent_give
with override_settings(THROWBACK_ENCODE_SELFIES_IN="process", MEDIA_ROOT=sys.argv[2]):
    member = Member.objects.create_user(username="clean")
    consent_give(member=member)
    client = Client()
    client.force_login(member)
    with open(sys.argv[1], "rb") as selfie:
        response = client.post("/api/references/", {{"image": selfie}})
    reference = member.references.get()
print(json.dumps({{
    "status": response.status_code,
    "encoded": bool(abs(reference.encoding).sum() > 0),
    "loaded": [name for name in {DLIB_MODULES!r} if name in sys.modules],
}}))
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code, str(examples / "obama.jpg"), str(tmp_path / "media")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": 201, "encoded": True, "loaded": []}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["api", "page"])
def test_a_killed_encoding_process_is_refused_clearly_and_loses_nothing(
    member: Member, face: bytes, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = stored_state(member)
    with signal_the_encoder(signal.SIGKILL) as signalled:
        response = api_upload(api_client(member), face) if path == "api" else form_upload(member, face)
    assert len(signalled) == 1
    if path == "api":
        assert response.status_code == 503
        assert response.json() == {"error": EncodingFailed.message, "code": "encoding_failed"}
    else:
        assert response.status_code == 200
        assert alerts(response.content.decode()) == [EncodingFailed.message]
    assert "selfie encoding process was killed by SIGKILL (out of memory?)" in caplog.text
    assert stored_state(member) == before
    assert not Path(f"/proc/{signalled[0]}").exists()  # reaped, no zombie left


@pytest.mark.django_db
def test_after_a_killed_encoding_process_the_next_upload_works(member: Member, face: bytes) -> None:
    client = api_client(member)
    with signal_the_encoder(signal.SIGKILL):
        assert api_upload(client, face).status_code == 503
    response = api_upload(client, face)
    assert response.status_code == 201
    assert ReferenceFace.objects.selfies().filter(member=member).count() == 2


@pytest.mark.django_db
def test_an_encoding_process_out_of_time_is_killed_and_refused(
    member: Member, face: bytes, two_seconds: None, caplog: pytest.LogCaptureFixture
) -> None:
    before = stored_state(member)
    with signal_the_encoder(signal.SIGSTOP) as signalled:  # frozen: it can never answer
        response = api_upload(api_client(member), face)
    assert response.status_code == 503
    assert response.json() == {"error": EncodingTimedOut.message, "code": "encoding_timeout"}
    assert "selfie encoding process timed out after 2 s" in caplog.text
    assert stored_state(member) == before
    assert not Path(f"/proc/{signalled[0]}").exists()  # killed and reaped


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deleted", ["face data", "account"])
def test_data_deleted_while_a_selfie_is_analysed_is_not_saved_afterwards(
    media_root: Path, in_process: None, face: bytes, deleted: str
) -> None:
    """ "Delete my data" lands while the child encodes (frozen here); the upload then refuses."""
    member = MemberFactory(username="ada")
    outcome: list[BaseException | ReferenceFace] = []

    def upload() -> None:
        try:
            outcome.append(reference_add(member=Member.objects.get(pk=member.pk), data=face))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)
        finally:
            connection.close()  # this thread's own database connection

    with signal_the_encoder(signal.SIGSTOP) as signalled:
        uploader = threading.Thread(target=upload)
        uploader.start()
        deadline = time.monotonic() + 60
        while not signalled and time.monotonic() < deadline:
            time.sleep(0.01)
    assert signalled, "the selfie never reached the encoding process"
    if deleted == "account":
        member_delete(member=member)
    else:
        assert member_face_data_delete(member=member).references == 0
    os.kill(signalled[0], signal.SIGCONT)
    uploader.join(timeout=120)

    assert len(outcome) == 1 and isinstance(outcome[0], ConsentWithdrawn), outcome
    assert not ReferenceFace.objects.filter(member_id=member.pk).exists()
    assert not [p for p in media_root.rglob("*") if p.is_file()]  # no selfie file left behind


def test_a_crash_inside_the_child_is_an_encoder_failure_with_its_traceback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from PIL import Image

    caplog.set_level(logging.ERROR, logger="faces.isolated")
    impossible = engine.EngineOptions(upsample=-1)  # dlib refuses a negative upsampling
    with pytest.raises(isolated.EncoderFailed, match=r"^the encoding process exited with status 1$"):
        isolated.find_faces(Image.new("RGB", (64, 64)), impossible, timeout_s=120)
    assert "selfie encoding process exited with status 1: Traceback (most recent call last):" in caplog.text
    assert "TypeError: __call__(): incompatible function arguments." in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("obama.jpg", None, None),
        ("two_people.jpg", "many_faces", "This photo shows 2 faces. Use a photo with only you in it."),
    ],
)
def test_the_child_process_answers_the_same_refusals_as_inline(
    member: Member, examples: Path, name: str, code: str | None, message: str | None
) -> None:
    response = api_upload(api_client(member), (examples / name).read_bytes())
    if code is None:
        assert response.status_code == 201
    else:
        assert response.status_code == 400
        assert response.json() == {"error": message, "code": code}


def test_where_selfies_are_encoded_comes_from_the_environment() -> None:
    names = ["THROWBACK_ENCODE_SELFIES_IN", "THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS"]
    assert settings_values(names).stdout == "('encoder', 60)\n"
    result = settings_values(
        names, THROWBACK_ENCODE_SELFIES_IN="Inline", THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS="15"
    )
    assert result.stdout == "('inline', 15)\n", result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "THROWBACK_ENCODE_SELFIES_IN",
            "thread",
            "THROWBACK_ENCODE_SELFIES_IN must be one of encoder, process, inline, not 'thread'",
        ),
        (
            "THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS",
            "0",
            "THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS must be at least 1, not 0",
        ),
    ],
)
def test_bad_selfie_encoding_settings_stop_start_up(variable: str, value: str, message: str) -> None:
    result = settings_values(["THROWBACK_ENCODE_SELFIES_IN"], **{variable: value})
    assert result.returncode == 1
    assert f"django.core.exceptions.ImproperlyConfigured: {message}\n" in result.stderr


def test_checks_refuse_bad_selfie_encoding_settings_from_a_settings_file(settings) -> None:  # type: ignore[no-untyped-def]
    assert {m.id for m in run_checks()} & {"faces.E005", "faces.E006"} == set()
    settings.THROWBACK_ENCODE_SELFIES_IN = "thread"
    settings.THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS = 0
    messages = {m.id: m.msg for m in run_checks() if m.id in ("faces.E005", "faces.E006")}
    assert messages == {
        "faces.E005": "THROWBACK_ENCODE_SELFIES_IN is 'thread': it must be encoder, process or inline",
        "faces.E006": "THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS is 0: it must be a positive number",
    }
