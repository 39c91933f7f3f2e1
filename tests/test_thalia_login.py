"""Log in with Thalia: the whole redirect dance against a real OpenID Connect
provider on 127.0.0.1 (tests/fake_oidc.py), driven by Django's test client on
Throwback's side and by `requests` at the provider, and every way it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import requests
from django.contrib.auth import SESSION_KEY
from django.test import Client

from faces.models import Album, Match, Photo
from members.models import Member, ReferenceFace
from tests.conftest import use_website
from tests.factories import MemberFactory, PhotoFactory, face_with
from tests.fake_oidc import FakeOIDC, MemberAwareConcrexit, s256
from thalia.models import AlbumAccess

CALLBACK = "http://testserver/accounts/thalia/callback/"
CLIENT_ID = "throwback-test"


@pytest.fixture
def website(settings) -> Iterator[MemberAwareConcrexit]:  # type: ignore[no-untyped-def]
    """The website's photos API, answering the importer's and members' tokens."""
    with MemberAwareConcrexit() as fake:
        use_website(settings, fake)
        yield fake


@pytest.fixture
def provider(settings, website: MemberAwareConcrexit) -> Iterator[FakeOIDC]:  # type: ignore[no-untyped-def]
    """The website's OpenID Connect provider, with Throwback registered as a public client."""
    with FakeOIDC(resource=website) as fake:
        fake.add_client(CLIENT_ID, {CALLBACK, "http://testserver/accounts/thalia/code/"})
        settings.THALIA_OIDC_URL = fake.base_url
        settings.THALIA_OIDC_CLIENT_ID = CLIENT_ID
        settings.THALIA_OIDC_CLIENT_SECRET = ""
        yield fake


def start(client: Client, query: str = "") -> str:
    """Throwback's login start: the provider's authorization URL it redirects to."""
    response = client.get(f"/accounts/thalia/login/{query}")
    assert response.status_code == 302
    return str(response["Location"])


def at_provider(url: str, **form: str) -> str:
    """The browser at the provider (GET, or POST of the consent form): where it is sent back to."""
    if form:
        response = requests.post(url, data=form, allow_redirects=False, timeout=5)
    else:
        response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return str(response.headers["Location"])


def back(client: Client, location: str):  # type: ignore[no-untyped-def]
    """Follow the provider's redirect back into Throwback."""
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CALLBACK
    return client.get(parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()})


def log_in(client: Client) -> object:
    return back(client, at_provider(start(client)))


# --- the dance ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_authorization_request_uses_pkce_s256_state_nonce_and_the_callback(
    client: Client, provider: FakeOIDC
) -> None:
    url = start(client)

    parts = urlsplit(url)
    params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{provider.base_url}/user/oauth/authorize/"
    assert sorted(params) == [
        "client_id",
        "code_challenge",
        "code_challenge_method",
        "nonce",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
    ]
    assert (params["response_type"], params["client_id"], params["redirect_uri"]) == (
        "code",
        CLIENT_ID,
        CALLBACK,
    )
    assert (params["scope"], params["code_challenge_method"]) == ("openid photos:read", "S256")
    stored = client.session["oidc_states"][params["state"]]
    assert s256(stored["code_verifier"]) == params["code_challenge"]
    assert stored["nonce"] == params["nonce"]


@pytest.mark.django_db
def test_first_login_makes_a_linked_member_and_later_logins_find_the_same_one(
    client: Client, provider: FakeOIDC, website: MemberAwareConcrexit
) -> None:
    provider.user = "4711"
    website.add_album("open", "Open", [])
    website.add_album("closed", "Closed", [])
    website.accessible_to["4711"] = {"open"}

    response = log_in(client)

    assert (response.status_code, response["Location"]) == (302, "/")
    member = Member.objects.get()
    assert (member.username, member.thalia_id, member.has_usable_password()) == ("thalia-4711", "4711", False)
    assert client.session[SESSION_KEY] == str(member.pk)
    assert list(AlbumAccess.objects.values_list("album_slug", flat=True)) == ["open"]
    # One code exchange, with the verifier the provider checked, and one album listing with the member's token.
    assert provider.token_requests("authorization_code") == 1
    assert website.requests == [("GET", "/api/v2/photos/albums/?limit=50&offset=0")]
    assert client.get("/").status_code == 200

    # The member changes their name here; the website still knows them as 4711.
    member.username, member.email = "renamed", "new@example.org"
    member.save()
    client.post("/accounts/logout/")
    other_browser = Client()
    response = log_in(other_browser)

    assert (response.status_code, response["Location"]) == (302, "/")
    assert other_browser.session[SESSION_KEY] == str(member.pk)
    assert Member.objects.count() == 1


@pytest.mark.django_db
def test_a_confidential_client_sends_its_secret(client: Client, provider: FakeOIDC, settings) -> None:  # type: ignore[no-untyped-def]
    provider.add_client(CLIENT_ID, {CALLBACK}, secret="s3cret")
    settings.THALIA_OIDC_CLIENT_SECRET = "s3cret"

    response = log_in(client)

    assert (response.status_code, response["Location"]) == (302, "/")
    settings.THALIA_OIDC_CLIENT_SECRET = "wrong"
    assert_failure_page(log_in(Client()), 502, "Thalia could not log you in right now. Please try again.")


@pytest.mark.django_db
def test_login_returns_to_the_page_asked_for(client: Client, provider: FakeOIDC) -> None:
    response = back(client, at_provider(start(client, "?next=/references/")))

    assert (response.status_code, response["Location"]) == (302, "/references/")


@pytest.mark.django_db
def test_a_local_account_with_the_same_username_gets_its_own_member(
    client: Client, provider: FakeOIDC
) -> None:
    local = MemberFactory(username="thalia-1")
    provider.user = "1"

    log_in(client)

    thalia = Member.objects.get(thalia_id="1")
    assert thalia.pk != local.pk
    assert thalia.username.startswith("thalia-1-") and len(thalia.username) == len("thalia-1-") + 8
    assert client.session[SESSION_KEY] == str(thalia.pk)


@pytest.mark.django_db
def test_the_session_ends_with_the_members_token(client: Client, provider: FakeOIDC) -> None:
    provider.token_ttl_s = 7200

    log_in(client)

    assert client.session.get_expiry_age() == 7200
    assert client.session["thalia_token"] == provider.live_access_tokens()[0]


@pytest.mark.django_db
def test_password_login_still_works_and_the_login_page_offers_thalia(
    client: Client, provider: FakeOIDC
) -> None:
    MemberFactory(username="admin")

    page = client.get("/accounts/login/").content.decode()
    response = client.post("/accounts/login/", {"username": "admin", "password": "correct horse battery"})

    assert '<a class="button" href="/accounts/thalia/login/">Log in with Thalia</a>' in page
    assert (response.status_code, response["Location"]) == (302, "/")


@pytest.mark.django_db
def test_without_a_client_id_there_is_no_thalia_login(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_OIDC_CLIENT_ID = ""

    page = client.get("/accounts/login/").content.decode()

    assert "Log in with Thalia" not in page
    assert client.get("/accounts/thalia/login/").status_code == 404
    assert client.get("/accounts/thalia/callback/?code=x&state=y").status_code == 404


# --- failures: a clear page, never a 500 -------------------------------------------------


def assert_failure_page(response, status: int, message: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.templates[0].name == "thalia/login_failed.html"
    assert response.context["message"] == message
    assert SESSION_KEY not in response.wsgi_request.session


STATE_MESSAGE = (
    "This login link has expired or was already used (for example after going back in the browser). "
    "Please start again."
)
CODE_MESSAGE = (
    "Thalia did not accept this login any more (it took too long, or was already used). Please start again."
)


@pytest.mark.django_db
def test_a_state_this_session_never_sent_is_refused_before_the_token_request(
    client: Client, provider: FakeOIDC
) -> None:
    location = at_provider(start(client))
    forged = location.replace("state=", "state=x")

    assert_failure_page(back(client, forged), 400, STATE_MESSAGE)
    assert provider.token_requests("authorization_code") == 0
    # A browser without that login in its session is refused the same way.
    assert_failure_page(back(Client(), location), 400, STATE_MESSAGE)
    assert provider.token_requests("authorization_code") == 0
    assert Member.objects.count() == 0


@pytest.mark.django_db
def test_a_callback_without_code_or_state_is_refused(client: Client, provider: FakeOIDC) -> None:
    assert_failure_page(client.get("/accounts/thalia/callback/"), 400, STATE_MESSAGE)


@pytest.mark.parametrize("error", ["server_error", "access_denied", "temporarily_unavailable"])
@pytest.mark.django_db
def test_an_error_with_a_state_this_session_never_sent_is_refused_and_the_login_goes_on(
    client: Client, provider: FakeOIDC, error: str
) -> None:
    """Anyone can link to the callback with `?error=…`: without this session's state it is not
    the website speaking (before: 502 "Thalia could not log you in" for any error but
    access_denied, 403 for that), and it does not spend the login this session started."""
    location = at_provider(start(client))

    for state in ({"state": "forged"}, {}):
        response = client.get("/accounts/thalia/callback/", {"error": error, **state})
        assert_failure_page(response, 400, STATE_MESSAGE)

    response = back(client, location)
    assert (response.status_code, response["Location"]) == (302, "/")
    assert Member.objects.count() == 1


@pytest.mark.django_db
def test_denied_consent_says_so(client: Client, provider: FakeOIDC) -> None:
    provider.auto_approve = False
    authorize = start(client)
    consent = requests.get(authorize, timeout=5)
    assert consent.status_code == 200 and "Allow" in consent.text
    form = {k: v[-1] for k, v in parse_qs(urlsplit(authorize).query).items()}

    location = at_provider(f"{provider.base_url}/user/oauth/authorize/", **form, allow="no")

    assert parse_qs(urlsplit(location).query)["error"] == ["access_denied"]
    assert_failure_page(
        back(client, location),
        403,
        "You did not allow Throwback to use your Thalia account, so you are not logged in.",
    )
    assert Member.objects.count() == 0


@pytest.mark.django_db
def test_another_provider_error_says_to_try_again(client: Client, provider: FakeOIDC) -> None:
    state = parse_qs(urlsplit(start(client)).query)["state"][0]

    response = client.get("/accounts/thalia/callback/", {"error": "server_error", "state": state})

    assert_failure_page(response, 502, "Thalia could not log you in right now. Please try again.")


@pytest.mark.django_db
def test_an_expired_code_is_refused_with_a_clear_page(client: Client, provider: FakeOIDC) -> None:
    location = at_provider(start(client))
    provider.clock_offset_s = provider.code_ttl_s + 1

    assert_failure_page(back(client, location), 400, CODE_MESSAGE)
    assert Member.objects.count() == 0


@pytest.mark.django_db
def test_a_used_code_is_refused_with_a_clear_page(client: Client, provider: FakeOIDC) -> None:
    location = at_provider(start(client))
    query = parse_qs(urlsplit(location).query)
    verifier = client.session["oidc_states"][query["state"][0]]["code_verifier"]
    # Someone else (who saw the code) redeems it first.
    stolen = requests.post(
        f"{provider.base_url}/user/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": CLIENT_ID,
        },
        timeout=5,
    )
    assert stolen.status_code == 200

    assert_failure_page(back(client, location), 400, CODE_MESSAGE)


@pytest.mark.django_db
def test_a_code_without_the_right_verifier_is_refused(client: Client, provider: FakeOIDC) -> None:
    location = at_provider(start(client))
    state = parse_qs(urlsplit(location).query)["state"][0]
    session = client.session
    session["oidc_states"][state]["code_verifier"] = "x" * 64
    session.save()

    assert_failure_page(back(client, location), 400, CODE_MESSAGE)


@pytest.mark.django_db
def test_the_provider_being_down_gives_a_clear_page(client: Client, provider: FakeOIDC) -> None:
    location = at_provider(start(client))
    provider.stop()

    assert_failure_page(
        back(client, location),
        502,
        "Thalia's website cannot be reached at the moment. Please try again in a few minutes.",
    )


@pytest.mark.django_db
def test_a_member_logs_in_with_the_issuer_concrexit_signs_with_its_trailing_slash(
    client: Client, provider: FakeOIDC
) -> None:
    assert provider.issuer_url == f"{provider.base_url}/"  # what django-oauth-toolkit derives

    response = log_in(client)

    assert (response.status_code, response["Location"]) == (302, "/")
    assert client.session[SESSION_KEY] == str(Member.objects.get(thalia_id="1").pk)


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["{base}", "{base}/oidc"])
def test_a_member_logs_in_through_a_provider_whose_discovery_names_another_issuer_form(
    client: Client, provider: FakeOIDC, form: str
) -> None:
    provider.issuer = form.format(base=provider.base_url)  # as OIDC_ISS_ENDPOINT sets it

    response = log_in(client)

    assert (response.status_code, response["Location"]) == (302, "/")
    assert Member.objects.get().thalia_id == "1"


@pytest.mark.django_db
@pytest.mark.parametrize("forged", ["http://127.0.0.1:9/", "{base}", "{base}//"])
def test_an_id_token_from_another_issuer_is_refused(client: Client, provider: FakeOIDC, forged: str) -> None:
    provider.id_token_issuer = forged.format(base=provider.base_url)

    assert_failure_page(
        log_in(client),
        400,
        "Thalia's answer could not be verified, so you are not logged in. Please start again.",
    )
    assert Member.objects.count() == 0


@pytest.mark.django_db
def test_a_provider_without_a_discovery_document_gives_a_clear_page(
    client: Client, provider: FakeOIDC
) -> None:
    provider.discovery = False

    response = client.get("/accounts/thalia/login/")

    assert_failure_page(response, 502, "Thalia could not log you in right now. Please try again.")
    assert provider.calls("GET", "/user/oauth/authorize/") == 0


@pytest.mark.django_db
def test_a_provider_that_is_down_at_the_start_gives_a_clear_page(client: Client, provider: FakeOIDC) -> None:
    provider.stop()

    assert_failure_page(
        client.get("/accounts/thalia/login/"),
        502,
        "Thalia's website cannot be reached at the moment. Please try again in a few minutes.",
    )


@pytest.mark.django_db
def test_a_discovery_document_naming_endpoints_on_another_site_is_refused(
    client: Client, provider: FakeOIDC, caplog: pytest.LogCaptureFixture
) -> None:
    provider.issuer = "http://localhost:9/"  # the fake names its endpoints on the issuer's host

    assert_failure_page(
        client.get("/accounts/thalia/login/"), 502, "Thalia could not log you in right now. Please try again."
    )
    assert "authorization_endpoint 'http://localhost:9/user/oauth/authorize/' is not on" in caplog.text


@pytest.mark.django_db
def test_an_application_without_oidc_support_fails_with_a_clear_page_and_a_hint_in_the_log(
    client: Client, provider: FakeOIDC, caplog: pytest.LogCaptureFixture
) -> None:
    provider.add_client(CLIENT_ID, {CALLBACK}, algorithm="")  # "No OIDC support" at the website

    assert_failure_page(log_in(client), 502, "Thalia could not log you in right now. Please try again.")
    assert "status: 500" in caplog.text
    assert "(is the OAuth application's algorithm set to RSA at the website?)" in caplog.text
    assert Member.objects.count() == 0


@pytest.mark.django_db
def test_the_discovery_document_is_read_once_and_names_every_endpoint(
    client: Client, provider: FakeOIDC
) -> None:
    provider.oauth_path = "/o/"  # not concrexit's layout: only discovery knows it

    first, second = log_in(client), log_in(Client())

    assert [response["Location"] for response in (first, second)] == ["/", "/"]  # type: ignore[index]
    assert provider.calls("GET", "/.well-known/openid-configuration/") == 1
    assert provider.calls("GET", "/o/authorize/") == 2
    assert (provider.calls("POST", "/o/token/"), provider.calls("GET", "/o/keys/")) == (2, 2)
    assert provider.calls("GET", "/o/info/") == 2


@pytest.mark.django_db
def test_a_disabled_member_is_told_so(client: Client, provider: FakeOIDC) -> None:
    provider.user = "5"
    Member.objects.create(username="thalia-5", thalia_id="5", is_active=False)

    assert_failure_page(
        log_in(client), 403, "Your Throwback account is disabled. Ask the board if you think this is wrong."
    )


# --- what a Thalia member may see ------------------------------------------------------------


def matched_photo(member: Member, album: Album) -> Photo:
    """A photo in album with a face matched to one of member's selfies."""
    photo = PhotoFactory(album=album)
    face = face_with(photo, np.zeros(128))
    reference = member.references.first()
    if reference is None:
        reference = ReferenceFace(member=member, image="references/x.jpg", top=0, right=1, bottom=1, left=0)
        reference.set_encoding(np.zeros(128))
        reference.save()
    Match.objects.create(member=member, reference=reference, face=face, distance=0.0)
    return photo


def shown_albums(client: Client) -> list[str]:
    results = client.get("/api/photos/").json()["results"]
    return [item["album"]["title"] for item in results]


@pytest.fixture
def albums(website: MemberAwareConcrexit) -> dict[str, Album]:
    """Two website albums (open to member 7, closed to them) and a folder album."""
    website.add_album("open", "Open", [])
    website.add_album("closed", "Closed", [])
    website.accessible_to["7"] = {"open"}
    return {
        "open": Album.objects.create(source=Album.Source.CONCREXIT, source_id="open", title="Open"),
        "closed": Album.objects.create(source=Album.Source.CONCREXIT, source_id="closed", title="Closed"),
        "party": Album.objects.create(source=Album.Source.FOLDER, source_id="party", title="Party"),
    }


@pytest.mark.django_db
def test_albums_the_site_closes_to_the_member_are_never_shown_even_when_matched(
    client: Client,
    provider: FakeOIDC,
    albums: dict[str, Album],
    settings,  # type: ignore[no-untyped-def]
) -> None:
    provider.user = "7"
    member = Member.objects.create(username="thalia-7", thalia_id="7", consent_given_at="2026-01-01T00:00Z")
    photos = {name: matched_photo(member, album) for name, album in albums.items()}

    log_in(client)

    assert sorted(Photo.objects.matched_to(member).values_list("album__title", flat=True)) == [
        "Open",
        "Party",
    ]
    assert sorted(shown_albums(client)) == ["Open", "Party"]
    page = client.get("/").content.decode()
    assert "Closed" not in page and "Open" in page
    assert client.get(f"/photos/{photos['closed'].pk}/file/").status_code == 404


@pytest.mark.django_db
def test_local_members_are_not_limited_by_the_website(albums: dict[str, Album]) -> None:
    member = MemberFactory()
    for album in albums.values():
        matched_photo(member, album)

    assert sorted(Photo.objects.matched_to(member).values_list("album__title", flat=True)) == [
        "Closed",
        "Open",
        "Party",
    ]


@pytest.mark.django_db
def test_when_the_site_cannot_say_a_new_thalia_member_sees_only_folder_albums(
    client: Client, provider: FakeOIDC, website: MemberAwareConcrexit, albums: dict[str, Album]
) -> None:
    provider.user = "7"
    member = Member.objects.create(username="thalia-7", thalia_id="7")
    for album in albums.values():
        matched_photo(member, album)
    website.down = True

    response = log_in(client)

    assert (response.status_code, response["Location"]) == (302, "/")
    assert shown_albums(client) == ["Party"]
    assert AlbumAccess.objects.count() == 0


@pytest.mark.django_db
def test_stale_access_is_asked_again_with_the_members_token(
    client: Client,
    provider: FakeOIDC,
    website: MemberAwareConcrexit,
    albums: dict[str, Album],
    settings,  # type: ignore[no-untyped-def]
) -> None:
    provider.user = "7"
    member = Member.objects.create(username="thalia-7", thalia_id="7")
    for album in albums.values():
        matched_photo(member, album)
    log_in(client)
    assert sorted(shown_albums(client)) == ["Open", "Party"]

    # The site now lets member 7 open both albums, and takes a while to be asked again.
    website.accessible_to["7"] = {"open", "closed"}
    assert sorted(shown_albums(client)) == ["Open", "Party"]  # still fresh: not asked
    settings.THALIA_ALBUM_ACCESS_MAX_AGE_SECONDS = 0

    assert sorted(shown_albums(client)) == ["Closed", "Open", "Party"]
    assert website.requests.count(("GET", "/api/v2/photos/albums/?limit=50&offset=0")) == 2

    # Access withdrawn at the site while the site is down: the stored set stays, never widened.
    website.accessible_to["7"] = set()
    website.down = True
    assert sorted(shown_albums(client)) == ["Closed", "Open", "Party"]
    website.down = False
    # After a failure the site is asked again only a minute later.
    assert sorted(shown_albums(client)) == ["Closed", "Open", "Party"]
    session = client.session
    session["thalia_albums_at"] = 0
    session.save()
    assert shown_albums(client) == ["Party"]


@pytest.mark.django_db
def test_an_expired_member_token_is_not_used(
    client: Client,
    provider: FakeOIDC,
    website: MemberAwareConcrexit,
    albums: dict[str, Album],
    settings,  # type: ignore[no-untyped-def]
) -> None:
    provider.user = "7"
    log_in(client)
    before = len(website.requests)
    settings.THALIA_ALBUM_ACCESS_MAX_AGE_SECONDS = 0
    session = client.session
    session["thalia_token_expires"] = 0
    session.save()

    client.get("/api/photos/")

    assert len(website.requests) == before
