# ruff: noqa: F811  (the `provider` and `website` fixtures come from test_thalia_login)
"""Throwback's own access to the website: `connect_thalia` once, then access
tokens renewed by Throwback itself, one renewal however many processes find
the token stale, and one renewal-and-retry when the site refuses it.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db_connection
from django.test import Client
from django.utils import timezone

from faces.models import Album, ImportRun
from faces.sources import SourceAlbum, SourceError
from tests.factories import MemberFactory
from tests.fake_oidc import FakeOIDC, MemberAwareConcrexit
from tests.test_thalia_login import at_provider, provider, website  # noqa: F401  (fixtures)
from thalia.checks import check_thalia_login
from thalia.grant import importer_token_renew
from thalia.management.commands.connect_thalia import parse_answer
from thalia.models import ThaliaConnection
from thalia.services import website_source

CODE_PAGE = "http://testserver/accounts/thalia/code/"


def connect(client: Client, monkeypatch: pytest.MonkeyPatch, *, tamper_state: bool = False) -> str:
    """Run connect_thalia as an admin would: open the printed address, allow,
    copy the code from Throwback's code page into the prompt. Returns the output."""
    out = io.StringIO()

    def admin_answers(prompt: str) -> str:
        url = re.search(r"http://\S+/authorize/\?\S+", out.getvalue())
        assert url is not None, out.getvalue()
        location = urlsplit(at_provider(url[0]))
        page = client.get(location.path + "?" + location.query).content.decode()
        shown = re.search(r'<code id="connect-code">([^<]*)</code>', page)
        assert shown is not None, page
        code, state = html.unescape(shown[1]).split()
        return f"{code} {'x' + state if tamper_state else state}"

    monkeypatch.setattr("builtins.input", admin_answers)
    call_command("connect_thalia", redirect_uri=CODE_PAGE, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_connect_thalia_keeps_a_grant_that_imports_use(
    client: Client,
    provider: FakeOIDC,
    website: MemberAwareConcrexit,
    monkeypatch: pytest.MonkeyPatch,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.THALIA_ACCESS_TOKEN = ""
    website.add_album("open", "Open", [])
    website.accessible_to[provider.user] = {"open"}  # the account the admin allowed access with

    output = connect(client, monkeypatch)

    stored = ThaliaConnection.objects.get()
    assert provider.live_access_tokens() == [stored.access_token]
    assert (stored.scope, stored.last_error) == ("photos:read events:read", "")
    assert stored.refresh_token and stored.refresh_token != stored.access_token
    assert output.splitlines()[0] == (
        "Asking for the scopes photos:read events:read. photos:read lists the albums and their photos; "
        "events:read gives albums their dates."
    )
    assert output.splitlines()[-1].startswith(
        f"Connected to {provider.base_url} with scope photos:read events:read; the access token lasts until "
    )
    source = website_source()
    assert source.token == stored.access_token
    assert [album.source_id for album in source.albums()] == ["open"]
    call_command("import_albums", workers=1, no_progress=True, stdout=io.StringIO())
    assert list(Album.objects.values_list("source_id", flat=True)) == ["open"]


@pytest.mark.django_db
def test_connect_thalia_refuses_a_code_from_another_attempt(
    client: Client,
    provider: FakeOIDC,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(CommandError, match="That code belongs to another attempt"):
        connect(client, monkeypatch, tamper_state=True)
    assert ThaliaConnection.objects.count() == 0
    assert provider.token_requests("authorization_code") == 0


@pytest.mark.django_db
def test_connect_thalia_needs_a_client_id(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_OIDC_CLIENT_ID = ""
    with pytest.raises(CommandError, match="THALIA_OIDC_CLIENT_ID is not set"):
        call_command("connect_thalia", redirect_uri=CODE_PAGE)


@pytest.fixture
def connected(client: Client, provider: FakeOIDC, monkeypatch: pytest.MonkeyPatch) -> ThaliaConnection:
    connect(client, monkeypatch)
    monkeypatch.undo()
    return ThaliaConnection.objects.get()


@pytest.mark.django_db
def test_the_stored_grant_comes_before_the_token_from_the_environment(
    connected: ThaliaConnection,
    website: MemberAwareConcrexit,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    assert website.token == settings.THALIA_ACCESS_TOKEN
    assert website_source().token == connected.access_token
    ThaliaConnection.objects.all().delete()
    assert website_source().token == website.token


@pytest.mark.django_db
def test_a_token_about_to_expire_is_renewed_before_use(
    connected: ThaliaConnection,
    provider: FakeOIDC,
    website: MemberAwareConcrexit,
) -> None:
    old = connected.access_token
    ThaliaConnection.objects.update(expires_at=timezone.now() + dt.timedelta(minutes=4))

    source = website_source()

    renewed = ThaliaConnection.objects.get()
    assert provider.token_requests("refresh_token") == 1
    assert source.token == renewed.access_token != old
    assert renewed.refresh_token != connected.refresh_token  # rotated
    assert renewed.expires_at > timezone.now() + dt.timedelta(hours=9)
    assert provider.live_access_tokens() == [renewed.access_token]
    assert old not in website.tokens


@pytest.mark.django_db
def test_a_refused_token_is_renewed_once_and_the_request_retried(
    connected: ThaliaConnection,
    provider: FakeOIDC,
    website: MemberAwareConcrexit,
) -> None:
    website.add_album("open", "Open", [])
    website.add_album("closed", "Closed", [])
    website.accessible_to[provider.user] = {"open"}
    source = website_source()
    website.forget_token(connected.access_token)  # revoked at the site before it expired

    assert [album.source_id for album in source.albums()] == ["open"]

    assert provider.token_requests("refresh_token") == 1
    assert source.token == ThaliaConnection.objects.get().access_token != connected.access_token
    # An album the site forbids is a 403 too: it does not cost another renewal.
    with pytest.raises(SourceError, match="closed/: HTTP 403"):
        source.photos(SourceAlbum("closed", "Closed"))
    assert provider.token_requests("refresh_token") == 1


@pytest.mark.django_db
def test_a_refused_refresh_token_fails_clearly_and_is_recorded(
    connected: ThaliaConnection,
    provider: FakeOIDC,
) -> None:
    ThaliaConnection.objects.update(refresh_token="revoked", expires_at=timezone.now())

    with pytest.raises(SourceError) as raised:
        website_source()

    message = f"cannot renew Throwback's token for the website: {provider.base_url}/user/oauth/token/: HTTP 400 invalid_grant"
    assert (str(raised.value), raised.value.permanent) == (message, True)
    assert (
        ThaliaConnection.objects.get().last_error
        == f"{provider.base_url}/user/oauth/token/: HTTP 400 invalid_grant"
    )


@pytest.mark.django_db(transaction=True)
def test_processes_renewing_at_once_make_one_refresh_and_share_its_token(
    connected: ThaliaConnection,
    provider: FakeOIDC,
) -> None:
    provider.token_delay_s = 0.5  # the first renewal is still at the site while the others ask
    start = threading.Barrier(4)
    results: list[str] = []
    errors: list[BaseException] = []

    def renew() -> None:
        try:
            start.wait()
            results.append(importer_token_renew(rejected=connected.access_token))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            db_connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=renew) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    stored = ThaliaConnection.objects.get()
    assert provider.token_requests("refresh_token") == 1
    assert results == [stored.access_token] * 4
    assert provider.live_access_tokens() == [stored.access_token]


@pytest.mark.django_db
def test_the_admin_shows_the_connection_but_never_its_tokens(
    connected: ThaliaConnection, admin_client: Client
) -> None:
    page = admin_client.get(f"/admin/thalia/thaliaconnection/{connected.pk}/change/").content.decode()

    assert "photos:read events:read" in page
    assert connected.access_token not in page
    assert connected.refresh_token not in page
    assert admin_client.get("/admin/thalia/thaliaconnection/add/").status_code == 403


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("abc xyz", ("abc", "xyz")),
        ("  abc  ", ("abc", None)),
        ("https://throwback.example.org/accounts/thalia/code/?code=abc&state=xyz", ("abc", "xyz")),
        ("/accounts/thalia/code/?code=abc", ("abc", None)),
    ],
)
def test_connect_thalia_reads_the_code_page_line_an_address_or_a_bare_code(
    answer: str, expected: tuple[str, str | None]
) -> None:
    assert parse_answer(answer) == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "No code given"),
        ("a b c", "Expected the code and the state, separated by a space"),
        (
            "https://throwback.example.org/accounts/thalia/code/?error=access_denied",
            "The website refused: access_denied",
        ),
        ("https://throwback.example.org/accounts/thalia/code/", "That address has no code in it"),
    ],
)
def test_connect_thalia_refuses_answers_without_a_code(answer: str, message: str) -> None:
    with pytest.raises(CommandError, match=f"^{re.escape(message)}$"):
        parse_answer(answer)


def test_the_code_page_shows_a_refusal(client: Client) -> None:
    page = client.get("/accounts/thalia/code/", {"error": "access_denied"}).content.decode()

    assert "The website did not connect Throwback: access_denied." in page


def test_system_checks_refuse_a_bad_provider_address_and_member_scopes_without_openid_or_photos(
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.THALIA_OIDC_URL = "thalia.nu"
    settings.THALIA_OIDC_CLIENT_ID = "throwback"
    settings.THALIA_OIDC_SCOPES = "profile:read"

    assert [problem.id for problem in check_thalia_login()] == [
        "thalia.E001",
        "thalia.E002",
        "thalia.E003",
    ]
    settings.THALIA_OIDC_URL = "https://thalia.nu"
    settings.THALIA_OIDC_SCOPES = "openid photos:read"
    assert check_thalia_login() == []


@pytest.mark.django_db
def test_a_superuser_connects_throwback_in_the_browser(
    admin_client: Client,
    admin_user,
    provider: FakeOIDC,  # type: ignore[no-untyped-def]
) -> None:
    response = admin_client.get("/accounts/thalia/connect/")
    assert response.status_code == 302
    params = parse_qs(urlsplit(response["Location"]).query)
    assert (params["redirect_uri"], params["scope"]) == ([CODE_PAGE], ["photos:read events:read"])
    location = urlsplit(at_provider(response["Location"]))

    response = admin_client.get(location.path + "?" + location.query)

    assert (response.status_code, response["Location"]) == (302, "/admin/thalia/thaliaconnection/")
    stored = ThaliaConnection.objects.get()
    assert stored.connected_by == admin_user.username
    assert provider.live_access_tokens() == [stored.access_token]


@pytest.mark.django_db
def test_a_code_for_another_browser_connection_is_only_shown(
    admin_client: Client, provider: FakeOIDC
) -> None:
    admin_client.get("/accounts/thalia/connect/")

    page = admin_client.get("/accounts/thalia/code/", {"code": "abc", "state": "forged"}).content.decode()

    assert '<code id="connect-code">abc forged</code>' in page
    assert ThaliaConnection.objects.count() == 0
    assert provider.token_requests("authorization_code") == 0


@pytest.mark.django_db
def test_only_a_superuser_may_connect_throwback(client: Client, provider: FakeOIDC) -> None:
    client.force_login(MemberFactory(is_staff=True))

    assert client.get("/accounts/thalia/connect/").status_code == 403


@pytest.mark.django_db
def test_connect_thalia_says_that_albums_get_no_date_without_events_read(
    client: Client,
    provider: FakeOIDC,
    monkeypatch: pytest.MonkeyPatch,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.THALIA_CONNECT_SCOPES = "photos:read"

    output = connect(client, monkeypatch)

    assert ThaliaConnection.objects.get().scope == "photos:read"
    assert output.splitlines()[-1] == (
        "Without events:read imported albums get no date. Add events:read to THALIA_CONNECT_SCOPES "
        "(it is in the default) and run connect_thalia again."
    )


@pytest.mark.django_db
def test_connect_and_renewal_use_the_token_endpoint_the_discovery_document_names(
    client: Client,
    provider: FakeOIDC,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider.oauth_path = "/o/"  # not concrexit's layout: only discovery knows it

    connect(client, monkeypatch)
    monkeypatch.undo()
    ThaliaConnection.objects.update(expires_at=timezone.now())
    website_source()

    assert (provider.calls("POST", "/o/token/"), provider.calls("POST", "/user/oauth/token/")) == (2, 0)
    assert provider.token_requests("refresh_token") == 1
    assert provider.live_access_tokens() == [ThaliaConnection.objects.get().access_token]
    assert provider.calls("GET", "/.well-known/openid-configuration/") == 1  # kept, not asked again


@pytest.mark.django_db
def test_without_a_discovery_document_the_grant_falls_back_to_concrexits_layout(
    client: Client,
    provider: FakeOIDC,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider.discovery = False  # OpenID Connect switched off; OAuth 2 still works

    connect(client, monkeypatch)
    monkeypatch.undo()
    ThaliaConnection.objects.update(expires_at=timezone.now())
    website_source()

    assert provider.calls("POST", "/user/oauth/token/") == 2
    assert provider.token_requests("refresh_token") == 1
    discovery = f"{provider.base_url}/.well-known/openid-configuration/"
    assert (
        f"{discovery}: HTTP 404, no OpenID Connect discovery document; "
        f"using {provider.base_url}/user/oauth/token/"
    ) in caplog.messages


@pytest.mark.django_db
def test_a_site_that_cannot_be_reached_fails_renewal_as_transient(
    connected: ThaliaConnection, provider: FakeOIDC
) -> None:
    ThaliaConnection.objects.update(expires_at=timezone.now())
    provider.stop()  # the discovery document was kept from connecting; the token endpoint is gone too

    with pytest.raises(SourceError, match="cannot renew Throwback's token") as raised:
        website_source()

    assert raised.value.permanent is False


@pytest.mark.django_db
def test_connecting_in_the_browser_while_the_site_is_down_says_so(
    admin_client: Client, provider: FakeOIDC
) -> None:
    provider.stop()

    response = admin_client.get("/accounts/thalia/connect/")

    assert response.status_code == 502
    assert "The website did not connect Throwback: the website cannot be reached; try again later." in (
        response.content.decode()
    )


@pytest.mark.django_db
def test_an_import_whose_grant_was_revoked_leaves_its_run_with_the_error(
    connected: ThaliaConnection, provider: FakeOIDC, website: MemberAwareConcrexit
) -> None:
    ThaliaConnection.objects.update(
        refresh_token="revoked", expires_at=timezone.now()
    )  # HTTP 400 invalid_grant

    with pytest.raises(CommandError, match="^Import failed: cannot renew Throwback's token"):
        call_command("import_albums", workers=1, no_progress=True, stdout=io.StringIO())

    run = ImportRun.objects.get()
    assert (run.source, run.location) == ("concrexit", website.base_url)
    assert run.error == (
        f"cannot renew Throwback's token for the website: {provider.base_url}/user/oauth/token/: "
        "HTTP 400 invalid_grant"
    )
    assert run.finished is not None
    assert website.requests == []  # it stopped before listing anything


@pytest.mark.django_db
def test_an_import_that_cannot_reach_the_site_to_renew_leaves_its_run_with_the_error(
    connected: ThaliaConnection, provider: FakeOIDC, website: MemberAwareConcrexit
) -> None:
    ThaliaConnection.objects.update(expires_at=timezone.now())
    provider.stop()

    with pytest.raises(CommandError, match="^Import failed: cannot renew Throwback's token"):
        call_command("import_albums", workers=1, no_progress=True, stdout=io.StringIO())

    run = ImportRun.objects.get()
    assert run.error.startswith(f"cannot renew Throwback's token for the website: {provider.base_url}/")
    assert run.error.endswith(": connection refused")  # before: ": ConnectionError"
    assert run.finished is not None
