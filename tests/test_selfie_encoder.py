"""Selfies analysed off the request path: the queue, the encoder process and the upload API.

The encoder is the real `manage.py run_encoder` in its own process, on this
test's database and media folder, analysing real photos; nothing is mocked.
The web side (Django's test client, this process) runs with
THROWBACK_ENCODE_SELFIES_IN=encoder, the production default, so it only
queues uploads and reads their state.
"""

from __future__ import annotations

import datetime as dt
import io
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.db.models import QuerySet
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from faces.models import Match
from members import selfies, services
from members.models import Member, ReferenceFace, SelfieUpload
from tests.conftest import REPO, import_process_env, make_album_folder
from tests.factories import MemberFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WAIT_S = 240  # generous: dlib's model load and the analysis on a busy machine
LEASE_S = 3


@pytest.fixture
def queued(settings, media_root: Path) -> None:  # type: ignore[no-untyped-def]
    """The web side queues uploads for an encoder process, as in production."""
    settings.THROWBACK_ENCODE_SELFIES_IN = "encoder"


@pytest.fixture
def imported(tmp_path: Path, examples: Path, media_root: Path) -> None:
    """An album of real photos, three of them with Obama."""
    root = make_album_folder(
        tmp_path / "photos",
        {"Party": [examples / n for n in ("obama1.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")]},
    )
    call_command("import_albums", folder=str(root), workers=1, no_progress=True, stdout=io.StringIO())


@pytest.fixture
def encoders(media_root: Path, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Starts `manage.py run_encoder` processes on this test's database; all are stopped afterwards."""
    started: list[subprocess.Popen[str]] = []
    env = import_process_env(
        media_root,
        THROWBACK_ENCODER_LEASE_SECONDS=str(LEASE_S),
        THROWBACK_ENCODER_POLL_SECONDS="0.05",
    )

    def start(**extra: str) -> subprocess.Popen[str]:
        log = (tmp_path / f"encoder-{len(started)}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "run_encoder"],
            cwd=REPO,
            env={**env, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def member_client(username: str) -> tuple[Client, Member]:
    member = MemberFactory(username=username)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    client.get(reverse("members:references"))  # sets the CSRF cookie
    return client, member


def upload(client: Client, data: bytes, *, prefer: str | None = "respond-async"):  # type: ignore[no-untyped-def]
    file = io.BytesIO(data)
    file.name = "selfie.jpg"
    headers = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    if prefer is not None:
        headers["HTTP_PREFER"] = prefer
    return client.post("/api/references/", {"image": file}, **headers)


def until(condition: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"still waiting for {what} after {timeout_s:g} s")


def ended(upload_id: int) -> SelfieUpload | None:
    row = SelfieUpload.objects.get(pk=upload_id)
    return None if row.pending else row


def kill_encoders_mid_analysis(encoders, uploads: QuerySet[SelfieUpload]) -> None:  # type: ignore[no-untyped-def]
    """Start an encoder and SIGKILL it inside its analysis, once per attempt the upload gets."""
    for attempt in (1, 2):  # the default THROWBACK_ENCODER_ATTEMPTS
        encoder = encoders(THROWBACK_SELFIE_JITTERS="100")  # a long analysis: the kill lands inside it
        until(
            lambda attempt=attempt: uploads.filter(state="analysing", attempts=attempt).exists(),
            f"attempt {attempt}",
        )
        encoder.send_signal(signal.SIGKILL)
        encoder.wait(timeout=60)


def white_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


def test_an_async_upload_is_answered_at_once_and_analysed_by_the_encoder_process(
    queued: None, imported: None, examples: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    client, member = member_client("barack")
    response = upload(client, (examples / "obama.jpg").read_bytes())

    assert response.status_code == 202
    assert response["Preference-Applied"] == "respond-async"
    row = SelfieUpload.objects.get(member=member)
    status_url = f"/api/references/uploads/{row.pk}/"
    assert response["Location"] == status_url
    assert response.json()["state"] == "queued"
    assert default_storage.exists(row.file.name)
    assert client.get(status_url).json()["state"] == "queued"  # no encoder yet: it waits, safely

    encoders()
    until(lambda: ended(row.pk), "the analysis")
    body = client.get(status_url).json()
    reference = ReferenceFace.objects.selfies().get(member=member)
    assert body["state"] == "done"
    assert body["selfie"]["id"] == reference.pk
    assert (body["error"], body["code"]) == (None, None)
    assert Match.objects.filter(reference=reference).count() == 3
    row.refresh_from_db()
    assert row.attempts == 1 and row.reference_id == reference.pk
    assert not default_storage.exists(row.file.name or "uploads/none")  # the upload's file is gone
    assert row.file.name == ""


def test_without_a_preference_the_api_answers_when_the_analysis_is_done(
    queued: None, imported: None, examples: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    encoders()
    client, member = member_client("barack")

    response = upload(client, (examples / "obama.jpg").read_bytes(), prefer=None)

    assert response.status_code == 201
    assert "Preference-Applied" not in response
    reference = ReferenceFace.objects.selfies().get(member=member)
    assert response.json() == {"id": reference.pk, "created": reference.created.isoformat(), "warnings": []}
    refused = upload(client, (examples / "two_people.jpg").read_bytes(), prefer=None)
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "This photo shows 2 faces. Use a photo with only you in it.",
        "code": "many_faces",
    }


def test_a_refusal_found_after_the_upload_reaches_the_status_url(
    queued: None, media_root: Path, examples: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    client, member = member_client("someone")
    no_face = upload(client, white_jpeg())
    two_faces = upload(client, (examples / "two_people.jpg").read_bytes())
    assert (no_face.status_code, two_faces.status_code) == (202, 202)

    encoders()
    for response in (no_face, two_faces):
        until(lambda response=response: ended(response.json()["id"]), "the refusal")
    assert client.get(no_face["Location"]).json() == {
        **no_face.json(),
        "state": "refused",
        "finished": SelfieUpload.objects.get(pk=no_face.json()["id"]).finished.isoformat(),
        "error": services.NoFaceFound.message,
        "code": "no_face",
    }
    assert client.get(two_faces["Location"]).json()["code"] == "many_faces"
    assert not ReferenceFace.objects.filter(member=member).exists()
    assert not any(name for name in SelfieUpload.objects.values_list("file", flat=True))


def test_only_the_owner_sees_an_upload(queued: None, examples: Path) -> None:
    owner, _ = member_client("owner")
    location = upload(owner, (examples / "obama.jpg").read_bytes())["Location"]
    other, _ = member_client("other")

    assert owner.get(location).status_code == 200
    assert other.get(location).status_code == 404
    assert other.get(location).json() == {"error": "No such upload.", "code": "not_found"}
    assert Client().get(location).status_code == 403
    page = location.removeprefix("/api")
    assert owner.get(page).status_code == 200
    assert other.get(page).status_code == 404


def test_uploads_are_analysed_in_order_of_arrival_per_member(
    queued: None, settings, media_root: Path, examples: Path, faces_dir: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_SELFIE_PENDING_PER_MEMBER = 3
    first, first_member = member_client("first")
    second, _ = member_client("second")
    photos = ["obama.jpg", "biden.jpg", "obama_small.jpg"]
    ids = [upload(first, (examples / name).read_bytes()).json()["id"] for name in photos]
    ids.append(upload(second, (examples / "kit_harington_john1.jpeg").read_bytes()).json()["id"])

    # Two encoders: the second must not take the first member's next upload early. A long lease:
    # dlib holds the GIL, so a claim is not renewed while a face is encoded.
    encoders(THROWBACK_ENCODER_LEASE_SECONDS="120")
    encoders(THROWBACK_ENCODER_LEASE_SECONDS="120")
    for upload_id in ids:
        until(lambda upload_id=upload_id: ended(upload_id), f"upload {upload_id}")

    rows = list(SelfieUpload.objects.filter(member=first_member).order_by("pk"))
    assert [row.state for row in rows] == ["done", "done", "done"]
    assert [row.attempts for row in rows] == [1, 1, 1]
    for earlier, later in zip(rows, rows[1:], strict=False):
        assert earlier.finished is not None and later.started is not None
        assert earlier.finished <= later.started
    assert [row.reference_id for row in rows] == sorted(row.reference_id for row in rows)  # type: ignore[type-var]


def test_an_encoder_killed_mid_analysis_is_replaced_and_the_upload_tried_once_more(
    queued: None, imported: None, examples: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    client, member = member_client("barack")
    upload_id = upload(client, (examples / "obama-1080p.jpg").read_bytes()).json()["id"]

    doomed = encoders(THROWBACK_SELFIE_JITTERS="100")  # a long analysis: the kill lands inside it
    until(
        lambda: SelfieUpload.objects.filter(pk=upload_id, state="analysing").exists(), "the analysis to start"
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=60)
    assert SelfieUpload.objects.get(pk=upload_id).state == "analysing"  # until its lease runs out

    encoders()
    row = until(lambda: ended(upload_id), "the second attempt")
    assert isinstance(row, SelfieUpload)
    assert (row.state, row.attempts) == ("done", 2)
    assert ReferenceFace.objects.selfies().filter(member=member).count() == 1


def test_an_upload_whose_encoder_dies_every_time_ends_refused(
    queued: None, media_root: Path, examples: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    client, member = member_client("barack")
    response = upload(client, (examples / "obama-1080p.jpg").read_bytes())
    upload_id = response.json()["id"]

    kill_encoders_mid_analysis(encoders, SelfieUpload.objects.filter(pk=upload_id))

    encoders()
    row = until(lambda: ended(upload_id), "the refusal")
    assert isinstance(row, SelfieUpload)
    assert (row.state, row.code, row.message) == (
        "refused",
        "encoding_failed",
        services.EncoderStopped.message,
    )
    assert client.get(response["Location"]).json()["error"] == services.EncoderStopped.message
    assert not ReferenceFace.objects.filter(member=member).exists()
    assert row.file.name == ""


def test_a_full_queue_refuses_an_upload_with_retry_after(queued: None, settings, examples: Path) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_SELFIE_QUEUE_MAX = 1
    first, _ = member_client("first")
    second, member = member_client("second")
    assert upload(first, (examples / "obama.jpg").read_bytes()).status_code == 202

    refused = upload(second, (examples / "biden.jpg").read_bytes())

    assert refused.status_code == 503
    assert refused["Retry-After"] == "60"
    assert refused.json() == {"error": services.AnalysisBusy.message, "code": "busy"}
    assert not SelfieUpload.objects.filter(member=member).exists()


def test_without_javascript_the_form_goes_to_a_page_that_refreshes_until_the_selfie_is_analysed(
    queued: None, imported: None, examples: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    member = MemberFactory(username="barack")
    client = Client()
    client.force_login(member)
    with (examples / "obama.jpg").open("rb") as file:
        posted = client.post("/references/", {"image": file})
    row = SelfieUpload.objects.get(member=member)
    assert posted.status_code == 302
    assert posted["Location"] == f"/references/uploads/{row.pk}/"

    waiting = client.get(posted["Location"])
    assert waiting.status_code == 200
    assert '<meta http-equiv="refresh" content="2">' in waiting.content.decode()
    assert "Analysing your selfie…" in waiting.content.decode()
    assert ": analysing…</li>" in client.get("/references/").content.decode()  # listed while waiting

    encoders()
    until(lambda: ended(row.pk), "the analysis")
    done = client.get(posted["Location"], follow=True)
    assert done.redirect_chain == [("/", 302)]
    assert services.SELFIE_ADDED in done.content.decode()


def test_without_javascript_a_refusal_found_later_is_shown_on_the_selfie_page(
    queued: None, media_root: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    member = MemberFactory(username="someone")
    client = Client()
    client.force_login(member)
    posted = client.post("/references/", {"image": io.BytesIO(white_jpeg())})
    encoders()
    until(lambda: ended(SelfieUpload.objects.get(member=member).pk), "the refusal")

    page = client.get(posted["Location"])
    assert page.status_code == 200
    assert f'<p class="error" role="alert">{services.NoFaceFound.message}</p>' in page.content.decode()


def analyse_here() -> SelfieUpload:
    """Claim and analyse the next queued upload in this process, as an encoder would."""
    claimed = selfies.selfie_upload_claim(owner="test-encoder")
    assert claimed is not None
    return selfies.selfie_upload_analyse(upload=claimed, encode_in="inline")


def test_a_refusal_found_after_the_member_left_is_listed_on_the_selfie_page_for_a_day(
    queued: None, media_root: Path
) -> None:
    client, member = member_client("someone")
    upload(client, white_jpeg())
    assert analyse_here().code == "no_face"

    listed = client.get(reverse("members:references")).content.decode()
    assert "Selfies refused in the last day" in listed
    assert services.NoFaceFound.message in listed

    SelfieUpload.objects.filter(member=member).update(finished=timezone.now() - dt.timedelta(hours=25))
    assert services.NoFaceFound.message not in client.get(reverse("members:references")).content.decode()


def test_a_finished_status_page_says_selfie_added_once(queued: None, examples: Path) -> None:
    client, _ = member_client("barack")
    status_page = reverse(
        "members:reference_upload", args=[upload(client, (examples / "obama.jpg").read_bytes()).json()["id"]]
    )
    assert analyse_here().state == "done"

    first = client.get(status_page, follow=True)
    again = client.get(status_page, follow=True)

    assert [str(m) for m in first.context["messages"]] == [services.SELFIE_ADDED]
    assert [str(m) for m in again.context["messages"]] == []


def test_deleting_my_data_takes_waiting_uploads_and_their_files(queued: None, examples: Path) -> None:
    client, member = member_client("barack")
    upload(client, (examples / "obama.jpg").read_bytes())
    name = SelfieUpload.objects.get(member=member).file.name
    assert default_storage.exists(name)

    services.member_face_data_delete(member=member)

    assert not SelfieUpload.objects.filter(member=member).exists()
    assert not default_storage.exists(name)


def reference_ids_used() -> int:
    """How many ReferenceFace ids were ever taken: a selfie inserted and rolled back or deleted counts too."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM members_referenceface_id_seq"
        )
        return int(cursor.fetchone()[0])


def test_deleting_my_data_while_an_upload_is_analysed_never_creates_its_selfie(
    queued: None, examples: Path
) -> None:
    """Delete my data, then consent again, while an encoder holds the upload: its selfie is never inserted."""
    client, member = member_client("barack")
    upload(client, (examples / "obama.jpg").read_bytes())
    claimed = selfies.selfie_upload_claim(owner="encoder-a")
    assert claimed is not None
    before = reference_ids_used()

    services.member_face_data_delete(member=member)
    services.consent_give(member=Member.objects.get(pk=member.pk))
    finished = selfies.selfie_upload_analyse(upload=claimed, encode_in="inline")

    assert finished.state == SelfieUpload.State.REFUSED
    assert reference_ids_used() == before
    assert not ReferenceFace.objects.filter(member=member).exists()


def test_an_upload_taken_over_by_another_encoder_is_saved_once(queued: None, examples: Path) -> None:
    """Encoder A stalled past the lease and B took the upload over: A's late result is not stored."""
    client, member = member_client("barack")
    upload(client, (examples / "obama.jpg").read_bytes())
    first = selfies.selfie_upload_claim(owner="encoder-a")
    assert first is not None
    SelfieUpload.objects.filter(pk=first.pk).update(heartbeat=timezone.now() - dt.timedelta(hours=1))
    assert selfies.selfie_uploads_recover() == 1
    second = selfies.selfie_upload_claim(owner="encoder-b")
    assert second is not None and second.pk == first.pk
    before = reference_ids_used()

    late = selfies.selfie_upload_analyse(upload=first, encode_in="inline")
    assert late.state == SelfieUpload.State.ANALYSING  # still B's
    assert reference_ids_used() == before
    done = selfies.selfie_upload_analyse(upload=second, encode_in="inline")

    assert done.state == SelfieUpload.State.DONE
    assert list(ReferenceFace.objects.selfies().filter(member=member)) == [done.reference]
    assert done.file.name == "" and not default_storage.exists(first.file.name)


def test_an_upload_queued_too_long_is_refused_when_read_with_no_encoder_alive(
    queued: None, settings, examples: Path
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_SELFIE_QUEUE_MAX_AGE_SECONDS = 60
    client, member = member_client("barack")
    answer = upload(client, (examples / "obama.jpg").read_bytes())
    assert answer.status_code == 202
    status_url = answer["Location"]
    name = SelfieUpload.objects.get(member=member).file.name
    assert client.get(status_url).json()["state"] == "queued"

    SelfieUpload.objects.filter(member=member).update(created=timezone.now() - dt.timedelta(seconds=61))
    status = client.get(status_url).json()

    assert (status["state"], status["code"]) == ("refused", "encoding_failed")
    assert status["error"] == services.QueueTimedOut.message
    assert not default_storage.exists(name)


def test_an_encoder_refuses_an_upload_queued_too_long_before_claiming_it(
    queued: None, examples: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    client, member = member_client("barack")
    upload(client, (examples / "obama.jpg").read_bytes())
    SelfieUpload.objects.filter(member=member).update(created=timezone.now() - dt.timedelta(seconds=61))

    encoders(THROWBACK_SELFIE_QUEUE_MAX_AGE_SECONDS="60")
    row = until(lambda: ended(SelfieUpload.objects.get(member=member).pk), "the upload refused")

    assert isinstance(row, SelfieUpload)
    assert (row.state, row.code, row.attempts) == (SelfieUpload.State.REFUSED, "encoding_failed", 0)


def test_an_analysis_past_its_timeout_is_refused_and_its_late_result_dropped(
    queued: None, settings, examples: Path, encoders
) -> None:  # type: ignore[no-untyped-def]
    """The page reads the state while the encoder (THROWBACK_SELFIE_JITTERS=100: a long analysis) works."""
    settings.THROWBACK_SELFIE_ANALYSIS_TIMEOUT_SECONDS = 2
    client, member = member_client("barack")
    before = reference_ids_used()
    encoder = encoders(THROWBACK_SELFIE_JITTERS="100")
    status_url = upload(client, (examples / "obama.jpg").read_bytes())["Location"]
    until(lambda: SelfieUpload.objects.get(member=member).state == "analysing", "the analysis")

    status = until(
        lambda: (answer := client.get(status_url).json())["state"] != "analysing" and answer,
        "the analysis refused",
    )

    assert isinstance(status, dict)
    assert (status["state"], status["code"]) == ("refused", "encoding_timeout")
    encoder.terminate()  # it finishes the analysis it is in, then exits
    assert encoder.wait(timeout=WAIT_S) == 0
    assert reference_ids_used() == before
    assert SelfieUpload.objects.get(member=member).code == "encoding_timeout"


def test_an_upload_deleted_while_its_request_waits_is_answered_409(queued: None, examples: Path) -> None:
    """Without a preference the request waits; "delete my data" meanwhile: 409, not a 202 whose URL 404s."""
    client, member = member_client("barack")
    answers: list[object] = []

    def post() -> None:
        try:
            answers.append(upload(client, (examples / "obama.jpg").read_bytes(), prefer=None))
        finally:
            connection.close()  # this thread's own connection

    waiting = threading.Thread(target=post)
    waiting.start()
    try:
        until(lambda: SelfieUpload.objects.filter(member=member).exists(), "the upload queued")
        services.member_face_data_delete(member=member)
    finally:
        waiting.join(timeout=WAIT_S)
    answer = answers[0]
    assert answer.status_code == 409  # type: ignore[attr-defined]
    assert answer.json() == {  # type: ignore[attr-defined]
        "error": services.ConsentWithdrawn.message,
        "code": "consent",
    }


def test_one_member_cannot_hold_more_than_their_share_of_the_queue(
    queued: None, settings, examples: Path
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_SELFIE_PENDING_PER_MEMBER = 2
    greedy, _ = member_client("greedy")
    other, _ = member_client("other")
    selfie = (examples / "obama.jpg").read_bytes()
    assert [upload(greedy, selfie).status_code for _ in range(2)] == [202, 202]

    refused = upload(greedy, selfie)
    assert refused.status_code == 429
    assert refused.json()["code"] == "pending"
    assert "still being analysed" in refused.json()["error"]
    assert refused["Retry-After"] == "30"
    assert upload(other, selfie).status_code == 202  # everyone else still gets in
    analyse_here()
    assert upload(greedy, selfie).status_code == 202  # one done: room again


def test_the_member_served_least_recently_goes_first(queued: None, examples: Path) -> None:
    """A's second upload came before B's first, but A was just served: B goes first, then A (in order)."""
    a, _ = member_client("a")
    b, _ = member_client("b")
    selfie = (examples / "obama.jpg").read_bytes()
    a_ids = [upload(a, selfie).json()["id"] for _ in range(2)]
    b_id = upload(b, selfie).json()["id"]

    assert [analyse_here().pk for _ in range(3)] == [a_ids[0], b_id, a_ids[1]]


def test_the_encoder_stops_cleanly_on_sigterm(queued: None, tmp_path: Path, encoders) -> None:  # type: ignore[no-untyped-def]
    encoder = encoders()
    log = tmp_path / "encoder-0.log"
    until(lambda: " ready\n" in log.read_text(), "the encoder to load its models")
    encoder.send_signal(signal.SIGTERM)
    assert encoder.wait(timeout=WAIT_S) == 0
    assert log.read_text().endswith("Analysed 0 selfie uploads\n")


def test_uploads_past_the_hourly_limit_are_refused_with_429_and_retry_after(
    queued: None, settings, examples: Path
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_UPLOADS_PER_HOUR = 2
    client, member = member_client("eager")
    other, _ = member_client("other")
    selfie = (examples / "obama.jpg").read_bytes()
    assert [upload(client, selfie).status_code for _ in range(2)] == [202, 202]

    refused = upload(client, selfie)

    assert refused.status_code == 429
    assert 3500 <= int(refused["Retry-After"]) <= 3601
    assert refused.json() == {
        "error": "You have uploaded 2 selfies in the last hour. Please wait 60 minutes before uploading another.",
        "code": "rate_limited",
    }
    assert SelfieUpload.objects.filter(member=member).count() == 2
    assert upload(other, selfie).status_code == 202  # one member's limit is theirs alone


def test_refused_uploads_count_towards_the_hourly_limit_and_the_form_says_so(
    queued: None, settings, examples: Path
) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_UPLOADS_PER_HOUR = 1
    member = MemberFactory(username="eager")
    SelfieUpload.objects.create(member=member, state="refused", code="no_face", message="No face.")
    client = Client()
    client.force_login(member)

    with (examples / "obama.jpg").open("rb") as file:
        page = client.post("/references/", {"image": file})

    assert page.status_code == 200
    assert (
        '<p class="error" role="alert">You have uploaded 1 selfie in the last hour. '
        "Please wait 60 minutes before uploading another.</p>"
    ) in page.content.decode()
    assert SelfieUpload.objects.filter(member=member).count() == 1


def test_without_a_preference_an_upload_beyond_the_waiting_requests_is_answered_202_at_once(
    queued: None, settings, examples: Path
) -> None:  # type: ignore[no-untyped-def]
    """THROWBACK_SELFIE_WAITERS bounds the threads that wait; the upload is queued, not lost."""
    settings.THROWBACK_SELFIE_WAITERS = 0
    client, member = member_client("barack")

    response = upload(client, (examples / "obama.jpg").read_bytes(), prefer=None)

    row = SelfieUpload.objects.get(member=member)
    assert response.status_code == 202
    assert "Preference-Applied" not in response
    assert response["Location"] == f"/api/references/uploads/{row.pk}/"
    assert (response.json()["state"], row.state) == ("queued", "queued")
