"""Who may do what: probes as another member and as nobody, CSRF on every state
change, open redirects, login throttling, security headers, production settings.

The probes are tables: a route added later is one line in ANONYMOUS_PROBES
(and, when it acts on a member's objects, one in INTRUDER_PROBES or
STATE_CHANGES). test_every_route_is_probed fails until it is.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image

from faces.models import Dismissal, FaceEncoding, Match, Photo, Suggestion
from members.models import Member, ReferenceFace, SelfieUpload
from tests.conftest import REPO
from tests.factories import AlbumFactory, MemberFactory, PhotoFactory, face_with
from tests.routes import routes

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # MemberFactory's


# --- a victim with one selfie matched in one folder photo -----------------------------------------
@dataclass
class Victim:
    member: Member
    reference: ReferenceFace
    photo: Photo
    face: FaceEncoding
    suggestion: Suggestion
    upload: SelfieUpload

    def rows(self) -> tuple[int, int, int, int, int, int, bool, str]:
        """What an intruder must not change: the victim's rows and file, "not me" marks and answers."""
        return (
            Member.objects.filter(pk=self.member.pk).count(),
            Dismissal.objects.count(),
            ReferenceFace.objects.filter(member=self.member).count(),
            Match.objects.filter(member=self.member).count(),
            Photo.objects.filter(pk=self.photo.pk).count(),
            FaceEncoding.objects.filter(pk=self.face.pk).count(),
            default_storage.exists(self.reference.image.name),
            "".join(Suggestion.objects.filter(member=self.member).values_list("answer", flat=True)) or "open",
        )


@pytest.fixture
def victim(media_root: Path) -> Victim:
    member = MemberFactory(username="victim")
    vector = np.full(128, 0.05, dtype=np.float32)
    reference = ReferenceFace(member=member, top=0, right=10, bottom=10, left=0)
    reference.set_encoding(vector)
    selfie = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 150, 120)).save(selfie, "JPEG")
    reference.image.save("victim.jpg", ContentFile(selfie.getvalue()), save=False)
    reference.save()
    album = AlbumFactory(title="Secret party", date=datetime.date(2019, 9, 6))
    photo = PhotoFactory(album=album, source_id="Party/secret.jpg")
    photo.file.save("secret.jpg", ContentFile(b"\xff\xd8photo"), save=True)
    face = face_with(photo, vector)
    Match.objects.create(member=member, reference=reference, face=face, distance=0.0)
    # An open "Is this you?" about a second face of the secret photo.
    offered = face_with(photo, np.full(128, 0.1, dtype=np.float32))
    suggestion = Suggestion.objects.create(member=member, face=offered, distance=0.53)
    upload = SelfieUpload.objects.create(member=member, state="refused", code="no_face", message="No face.")
    return Victim(member, reference, photo, face, suggestion, upload)


def member_client(username: str, *, staff: bool = False) -> Client:
    """A logged-in member's client that enforces CSRF and holds a CSRF cookie."""
    member = MemberFactory(username=username, is_staff=staff)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    client.get("/references/")  # a page with a form sets the CSRF cookie
    return client


def csrf(client: Client) -> dict[str, str]:
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


# --- the route table ------------------------------------------------------------------------------
# Every URL pattern outside the admin, and how an anonymous visitor is answered.
# "login": 302 to the login page; "json403": 403 {"code": "not_authenticated"};
# a number: the exact status of a page meant for visitors (or of a method not allowed).
# {photo}, {album}, {year} and {reference} are the victim's.
ANONYMOUS_PROBES: list[tuple[str, str, str | int]] = [
    ("GET", "/", 200),  # the landing page
    ("GET", "/favicon.ico", 302),  # to the static icon
    ("GET", "/consent/", "login"),
    ("POST", "/consent/", "login"),
    ("GET", "/references/", "login"),
    ("POST", "/references/", "login"),
    ("POST", "/references/{reference}/delete/", "login"),
    ("GET", "/references/{reference}/face.jpg", "login"),
    ("GET", "/references/uploads/{upload}/", "login"),
    ("GET", "/photos/{photo}/", "login"),
    ("GET", "/photos/{photo}/file/", "login"),
    ("GET", "/photos/{photo}/download/", "login"),
    ("POST", "/photos/{photo}/not-me/", "login"),
    ("GET", "/photos/{photo}/not-me/", 405),
    ("GET", "/albums/{album}/download/", "login"),
    ("GET", "/years/", "login"),
    ("GET", "/years/{year}/", "login"),
    ("GET", "/privacy/delete/", "login"),
    ("POST", "/privacy/delete/", "login"),
    ("GET", "/privacy/deleted/", 200),  # also for a member whose account is gone
    ("GET", "/api/references/", "json403"),
    ("POST", "/api/references/", "json403"),
    ("DELETE", "/api/references/{reference}/", "json403"),
    ("GET", "/api/references/uploads/{upload}/", "json403"),
    ("GET", "/api/photos/", "json403"),
    ("POST", "/api/photos/{photo}/not-me/", "json403"),
    ("POST", "/suggestions/{suggestion}/answer/", "login"),
    ("GET", "/suggestions/{suggestion}/answer/", 405),
    ("GET", "/api/suggestions/", "json403"),
    ("POST", "/api/suggestions/{suggestion}/", "json403"),
    ("GET", "/accounts/login/", 200),
    ("POST", "/accounts/logout/", 302),
    ("GET", "/accounts/signup/", 404),  # THROWBACK_ALLOW_SIGNUP is off
    # Log in with Thalia is off without THALIA_OIDC_CLIENT_ID (test_thalia_login turns it on).
    ("GET", "/accounts/thalia/login/", 404),
    ("GET", "/accounts/thalia/callback/", 404),
    ("GET", "/accounts/thalia/connect/", "login"),
    ("GET", "/accounts/thalia/code/", 200),  # shows a code for `manage.py connect_thalia`
    ("POST", "/photos/{photo}/restore/", "login"),
    ("DELETE", "/api/photos/{photo}/not-me/", "json403"),
    ("POST", "/privacy/notifications/", "login"),
    # The digest's unsubscribe link needs no login; an unsigned token is refused.
    ("GET", "/notifications/unsubscribe/{token}/", 404),
    ("POST", "/notifications/unsubscribe/{token}/", 404),
    # Password reset, for local accounts (an invalid link says so).
    ("GET", "/accounts/password/reset/", 200),
    ("GET", "/accounts/password/reset/sent/", 200),
    ("GET", "/accounts/password/reset/{uid}/{reset_token}/", 200),
    ("GET", "/accounts/password/reset/done/", 200),
]

# Another member acting on the victim's objects: the expected status. The body
# never mentions the victim's album or photo, and nothing of the victim's changes.
INTRUDER_PROBES: list[tuple[str, str, int]] = [
    ("GET", "/photos/{photo}/", 404),
    ("GET", "/photos/{photo}/file/", 404),
    ("GET", "/photos/{photo}/download/", 404),
    ("POST", "/photos/{photo}/not-me/", 404),
    ("POST", "/api/photos/{photo}/not-me/", 404),
    ("GET", "/albums/{album}/download/", 404),
    ("GET", "/references/{reference}/face.jpg", 404),
    ("POST", "/references/{reference}/delete/", 404),
    ("DELETE", "/api/references/{reference}/", 404),
    ("GET", "/references/uploads/{upload}/", 404),
    ("GET", "/api/references/uploads/{upload}/", 404),
    ("POST", "/suggestions/{suggestion}/answer/", 404),
    ("POST", "/api/suggestions/{suggestion}/", 404),
    ("GET", "/api/suggestions/", 200),
    ("GET", "/api/references/", 200),
    ("GET", "/api/photos/", 200),
    ("GET", "/", 200),
    ("GET", "/references/", 200),
    ("GET", "/years/", 200),
    ("GET", "/years/{year}/", 200),
    ("GET", "/privacy/delete/", 200),
    ("POST", "/privacy/delete/", 302),  # deletes the intruder's own data and account only
    ("GET", "/accounts/thalia/connect/", 404),
    ("POST", "/photos/{photo}/restore/", 404),
    ("DELETE", "/api/photos/{photo}/not-me/", 404),
]
INTRUDER_DATA = {
    "/privacy/delete/": {"confirm": "on", "delete_account": "on"},
    "/suggestions/{suggestion}/answer/": {"answer": "yes"},
    "/api/suggestions/{suggestion}/": {"answer": "yes"},
}

# Every state-changing request a logged-in member can make (CSRF must be checked).
STATE_CHANGES: list[tuple[str, str, dict[str, str]]] = [
    ("POST", "/consent/", {"agree": "on"}),
    ("POST", "/references/", {}),
    ("POST", "/references/{reference}/delete/", {}),
    ("POST", "/api/references/", {"consent": "yes"}),
    ("DELETE", "/api/references/{reference}/", {}),
    ("POST", "/photos/{photo}/not-me/", {}),
    ("POST", "/api/photos/{photo}/not-me/", {}),
    ("POST", "/suggestions/{suggestion}/answer/", {"answer": "no"}),
    ("POST", "/api/suggestions/{suggestion}/", {"answer": "no"}),
    ("POST", "/privacy/delete/", {"confirm": "on", "delete_account": "on"}),
    ("POST", "/photos/{photo}/restore/", {}),
    ("DELETE", "/api/photos/{photo}/not-me/", {}),
    ("POST", "/privacy/notifications/", {"notify": "on", "email": "a@example.org"}),
    ("POST", "/accounts/logout/", {}),
]


ADMIN_PAGES = [
    "/admin/",
    "/admin/faces/album/",
    "/admin/faces/photo/",
    "/admin/members/member/",
    "/admin/members/referenceface/",
]


def fill(path: str, victim: Victim) -> str:
    return path.format(
        reference=victim.reference.pk,
        photo=victim.photo.pk,
        album=victim.photo.album_id,
        year=victim.photo.album.date.year,  # type: ignore[union-attr]
        token=f"{victim.member.pk}",  # the victim's id, unsigned
        uid="MQ",
        reset_token="set-password",
        suggestion=victim.suggestion.pk,
        upload=victim.upload.pk,
    )


def send(client: Client, method: str, path: str, data: dict[str, str] | None = None, **extra: str):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(path, **extra)
    if method == "POST":
        return client.post(path, data or {}, **extra)
    return client.generic(method, path, **extra)


def _as_route(path: str) -> str:
    for name, converter in [
        ("{reference}", "<int:reference_id>"),
        ("{photo}", "<int:photo_id>"),
        ("{album}", "<int:album_id>"),
        ("{year}", "<year:year>"),
        ("{token}", "<str:token>"),
        ("{uid}", "<uidb64>"),
        ("{reset_token}", "<token>"),
        ("{suggestion}", "<int:suggestion_id>"),
        ("{upload}", "<int:upload_id>"),
    ]:
        path = path.replace(name, converter)
    return path.lstrip("/")


def test_every_route_is_probed() -> None:
    """A new page or endpoint must be added to ANONYMOUS_PROBES (one line)."""
    probed = {_as_route(path) for _, path, _ in ANONYMOUS_PROBES}
    assert sorted(set(routes()) - probed) == []


@pytest.mark.parametrize(("method", "path", "refusal"), ANONYMOUS_PROBES)
def test_anonymous_visitors_are_refused(victim: Victim, method: str, path: str, refusal: str | int) -> None:
    before = victim.rows()
    client = Client()
    response = send(client, method, fill(path, victim))
    if refusal == "login":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    elif refusal == "json403":
        assert response.status_code == 403
        assert response.json() == {"error": "Log in first.", "code": "not_authenticated"}
    else:
        assert response.status_code == refusal
    content = response.content.decode(errors="replace")
    assert "Secret party" not in content and "secret.jpg" not in content
    assert victim.rows() == before


@pytest.mark.parametrize(("method", "path", "status"), INTRUDER_PROBES)
def test_another_member_cannot_see_or_touch_the_victims_objects(
    victim: Victim, method: str, path: str, status: int
) -> None:
    before = victim.rows()
    intruder = member_client("mallory")
    response = send(intruder, method, fill(path, victim), INTRUDER_DATA.get(path), **csrf(intruder))
    assert response.status_code == status
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    assert b"\xff\xd8photo" not in body
    text = body.decode(errors="replace")
    assert "Secret party" not in text
    assert f"/photos/{victim.photo.pk}/file/" not in text
    if path in ("/api/references/", "/api/suggestions/"):
        assert response.json() == []
    if path == "/api/photos/":
        assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert victim.rows() == before


def test_the_victim_does_reach_each_object_the_probes_ask_for(victim: Victim) -> None:
    """The intruder probes ask for objects that exist: the owner gets them."""
    owner = Client()
    owner.force_login(victim.member)
    served = owner.get(fill("/photos/{photo}/file/", victim))
    assert served.status_code == 200 and b"".join(served.streaming_content) == b"\xff\xd8photo"
    assert [r["id"] for r in owner.get("/api/references/").json()] == [victim.reference.pk]
    assert owner.get("/api/photos/").json()["count"] == 1
    assert "Secret party" in owner.get("/").content.decode()
    assert "Secret party" in owner.get(fill("/years/{year}/", victim)).content.decode()
    assert "2019" in owner.get("/years/").content.decode()
    assert owner.get(fill("/photos/{photo}/", victim)).status_code == 200
    download = owner.get(fill("/photos/{photo}/download/", victim))
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"\xff\xd8photo"
    album = owner.get(fill("/albums/{album}/download/", victim))
    assert album.status_code == 200 and b"\xff\xd8photo" in b"".join(album.streaming_content)
    face = owner.get(fill("/references/{reference}/face.jpg", victim))
    assert (
        face.status_code == 200 and face["Content-Type"] == "image/jpeg" and face.content[:2] == b"\xff\xd8"
    )
    assert owner.post(fill("/api/photos/{photo}/not-me/", victim)).status_code == 204
    assert Dismissal.objects.filter(member=victim.member, photo=victim.photo).count() == 1


@pytest.mark.parametrize(("method", "path", "data"), STATE_CHANGES)
def test_state_changes_without_the_csrf_token_are_refused(
    victim: Victim, method: str, path: str, data: dict[str, str]
) -> None:
    victim.member.consent_given_at = None
    victim.member.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(victim.member)
    before = victim.rows()
    response = send(client, method, fill(path, victim), data)
    assert response.status_code == 403
    assert b"CSRF verification failed" in response.content
    assert victim.rows() == before
    victim.member.refresh_from_db()
    assert victim.member.consent_given_at is None
    assert client.get("/api/references/").status_code == 200  # still logged in


@pytest.mark.parametrize(("method", "path", "data"), STATE_CHANGES)
def test_a_wrong_csrf_token_is_refused_too(
    victim: Victim, method: str, path: str, data: dict[str, str]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(victim.member)
    client.get("/references/")
    before = victim.rows()
    response = send(client, method, fill(path, victim), data, HTTP_X_CSRFTOKEN="x" * 32)
    assert response.status_code == 403
    assert victim.rows() == before


def test_logging_in_without_the_csrf_token_is_refused(victim: Victim) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "victim", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_non_staff_members_cannot_use_the_admin(victim: Victim, path: str) -> None:
    member = member_client("plain")
    response = member.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "Secret party" not in member.get(response["Location"]).content.decode()


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_anonymous_visitors_cannot_use_the_admin(victim: Victim, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_staff_without_permissions_see_no_member_data(victim: Victim) -> None:
    staff = member_client("clerk", staff=True)
    assert staff.get("/admin/members/member/").status_code == 403
    assert staff.get("/admin/faces/album/").status_code == 403


# --- redirects ------------------------------------------------------------------------------------
EVIL_NEXT = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "https:evil.example",
    "http://testserver@evil.example/",
    " https://evil.example/",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_login_next_never_leaves_the_site(victim: Victim, target: str) -> None:
    client = Client()
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "victim", "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/"
    # An already logged-in member sent to the login page is not bounced away either.
    again = client.get("/accounts/login/", {"next": target})
    assert again.status_code == 302 and again["Location"] == "/"


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_logout_next_never_leaves_the_site(victim: Victim, target: str) -> None:
    client = Client()
    client.force_login(victim.member)
    response = client.post(f"/accounts/logout/?next={target}")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_not_me_next_never_leaves_the_site(victim: Victim, target: str) -> None:
    client = Client()
    client.force_login(victim.member)
    response = client.post(fill("/photos/{photo}/not-me/", victim), {"next": target})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert Dismissal.objects.filter(member=victim.member, photo=victim.photo).count() == 1


def test_a_local_next_is_followed(victim: Victim) -> None:
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "victim", "password": PASSWORD, "next": "/references/"}
    )
    assert response["Location"] == "/references/"


# --- login throttling -----------------------------------------------------------------------------
def login(client: Client, username: str, password: str, address: str = "10.0.0.1"):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_logins_are_throttled_after_five_failures(victim: Victim, settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.AXES_FAILURE_LIMIT == 5
    client = Client()
    for _ in range(4):
        assert login(client, "victim", "wrong").status_code == 200  # the form, with its error
    locked = login(client, "victim", "wrong")
    assert locked.status_code == 429
    # Locked: even the right password is refused now, from this address.
    refused = login(client, "victim", PASSWORD)
    assert refused.status_code == 429
    assert b"too many login attempts" in refused.content
    assert "_auth_user_id" not in client.session
    # The lock is for this username from this address only.
    assert login(Client(), "victim", PASSWORD, address="10.0.0.2").status_code == 302
    MemberFactory(username="neighbour")
    assert login(Client(), "neighbour", PASSWORD).status_code == 302


def test_a_successful_login_resets_the_failure_count(victim: Victim) -> None:
    client = Client()
    for _ in range(4):
        login(client, "victim", "wrong")
    assert login(client, "victim", PASSWORD).status_code == 302
    for _ in range(4):
        assert login(Client(), "victim", "wrong").status_code == 200
    assert login(Client(), "victim", PASSWORD).status_code == 302


# --- headers and cookies --------------------------------------------------------------------------
def test_pages_send_the_security_headers(victim: Victim) -> None:
    client = Client()
    client.force_login(victim.member)
    for path in ("/", "/references/", "/api/photos/", f"/photos/{victim.photo.pk}/file/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    cookie = Client().get("/accounts/login/").cookies["csrftoken"]
    assert cookie["samesite"] == "Lax"


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "SESSION_", "THROWBACK_", "DJANGO_")) and key != "DEBUG"
    }
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "throwback.settings",
        "THROWBACK_PRODUCTION": "true",
        "DEBUG": "false",
        "SECRET_KEY": "p" * 20 + "-a-long-random-production-key-" + "q" * 30,
        "ALLOWED_HOSTS": "throwback.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://throwback.example.org",
        "THROWBACK_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        # No collectstatic here: plain static storage instead of the manifest.
        "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "THROWBACK_TRUSTED_PROXIES": "1",  # the nginx of docs/deployment.md
        **extra,
    }


def test_check_deploy_passes_with_production_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        env=_production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (1 silenced)." in result.stdout


def test_check_deploy_fails_without_production_settings(tmp_path: Path) -> None:
    """The check is not vacuous: the demo defaults do not pass it."""
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        env=_production_env(tmp_path, THROWBACK_PRODUCTION="false"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stderr


def test_check_deploy_warns_when_no_proxy_is_trusted_in_production(tmp_path: Path) -> None:
    env = {
        key: value for key, value in _production_env(tmp_path).items() if key != "THROWBACK_TRUSTED_PROXIES"
    }
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 1
    assert (
        "?: (throwback.W001) THROWBACK_TRUSTED_PROXIES is 0 behind the reverse proxy: every login seems to "
        "come from the proxy's address, so failed logins from anyone lock a username for everyone, and 20 "
        "failures lock every login"
    ) in result.stderr


MANIFEST_STORAGE = "whitenoise.storage.CompressedManifestStaticFilesStorage"  # production's default


def manage(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_fails_when_collectstatic_was_forgotten(tmp_path: Path) -> None:
    """Without the manifest every page answers 500, so `check --deploy` must fail, not pass."""
    env = _production_env(
        tmp_path, STATICFILES_STORAGE=MANIFEST_STORAGE, STATIC_ROOT=str(tmp_path / "static")
    )
    result = manage(env, "check", "--deploy")
    assert result.returncode == 1
    assert (
        f"?: (throwback.E001) The static files manifest {tmp_path}/static/staticfiles.json is missing: "
        "every page would answer 500\n\tHINT: Run `python manage.py collectstatic --noinput`"
    ) in result.stderr


def test_check_deploy_passes_after_collectstatic_and_names_files_the_manifest_lacks(tmp_path: Path) -> None:
    env = _production_env(
        tmp_path, STATICFILES_STORAGE=MANIFEST_STORAGE, STATIC_ROOT=str(tmp_path / "static")
    )
    assert manage(env, "collectstatic", "--noinput", "--verbosity", "0").returncode == 0
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (1 silenced)." in result.stdout
    # A manifest from an older release (a file added since) breaks the pages that use the file.
    manifest_path = tmp_path / "static" / "staticfiles.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["paths"]["js/lightbox.js"]
    manifest_path.write_text(json.dumps(manifest))
    stale = manage(env, "check", "--deploy")
    assert stale.returncode == 1
    assert (
        "?: (throwback.E002) The static files manifest lacks 1 static files (js/lightbox.js): "
        "pages that use them would answer 500"
    ) in stale.stderr


PROBE_SCRIPT = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
settings.ALLOWED_HOSTS = ["throwback.example.org"]
client = Client(HTTP_HOST="throwback.example.org")
plain = client.get("/accounts/login/")
tls = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
cookie = tls.cookies["csrftoken"]
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "tls": [tls.status_code, tls.get("Strict-Transport-Security"), tls.get("X-Frame-Options"),
            tls.get("X-Content-Type-Options"), tls.get("Referrer-Policy")],
    "csrf_cookie": [bool(cookie["secure"]), bool(cookie["httponly"]), cookie["samesite"]],
    "session": [settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY, settings.SESSION_COOKIE_SAMESITE],
}))
"""


def test_production_settings_redirect_to_https_and_send_hsts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE_SCRIPT],
        env=_production_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "plain": [301, "https://throwback.example.org/accounts/login/"],
        "tls": [200, "max-age=31536000; includeSubDomains", "DENY", "nosniff", "same-origin"],
        "csrf_cookie": [True, False, "Lax"],
        "session": [True, True, "Lax"],
    }


def test_production_refuses_debug(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check"],
        env=_production_env(tmp_path, DEBUG="true"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "THROWBACK_PRODUCTION=true needs DEBUG=false" in result.stderr
