"""The OpenID Connect fake behaves like concrexit's provider (django-oauth-toolkit 2.4.0).

One test per behaviour Throwback depends on; tests/fake_oidc.py names the
line of concrexit, django-oauth-toolkit or oauthlib each one copies. Driven
with plain `requests`, as a browser and a client would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests

from tests.fake_oidc import FakeOIDC, MemberAwareConcrexit, s256

REDIRECT = "http://testserver/accounts/thalia/callback/"
VERIFIER = "v" * 64


@pytest.fixture
def website() -> Iterator[MemberAwareConcrexit]:
    with MemberAwareConcrexit() as fake:
        yield fake


@pytest.fixture
def provider(website: MemberAwareConcrexit) -> Iterator[FakeOIDC]:
    with FakeOIDC(resource=website) as fake:
        fake.add_client("app", {REDIRECT})
        yield fake


def authorize(
    provider: FakeOIDC, *, scope: str, challenge: bool = True, client: str = "app"
) -> dict[str, str]:
    """The query the provider redirects the browser back with."""
    params = {"response_type": "code", "client_id": client, "redirect_uri": REDIRECT, "scope": scope}
    params["state"] = "st"
    if challenge:
        params |= {"code_challenge": s256(VERIFIER), "code_challenge_method": "S256"}
    response = requests.get(
        f"{provider.base_url}/user/oauth/authorize/?{urlencode(params)}", allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[-1] for k, v in parse_qs(location.query).items()}


def exchange(
    provider: FakeOIDC, code: str, verifier: str = VERIFIER, client: str = "app"
) -> requests.Response:
    return requests.post(
        f"{provider.base_url}/user/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client,
        },
        timeout=5,
    )


def test_discovery_is_served_at_the_address_with_the_slash(provider: FakeOIDC) -> None:
    document = requests.get(f"{provider.base_url}/.well-known/openid-configuration/", timeout=5)
    bare = requests.get(
        f"{provider.base_url}/.well-known/openid-configuration", allow_redirects=False, timeout=5
    )

    assert document.status_code == 200
    body = document.json()
    base = provider.base_url
    assert {
        name: body[name] for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")
    } == {
        "authorization_endpoint": f"{base}/user/oauth/authorize/",
        "token_endpoint": f"{base}/user/oauth/token/",
        "userinfo_endpoint": f"{base}/user/oauth/info/",
    }
    assert (body["jwks_uri"], body["code_challenge_methods_supported"]) == (
        f"{base}/user/oauth/keys/",
        ["plain", "S256"],
    )
    assert (bare.status_code, bare.headers["Location"]) == (301, "/.well-known/openid-configuration/")


def test_the_issuer_is_the_site_with_a_trailing_slash_in_discovery_and_id_tokens(provider: FakeOIDC) -> None:
    document = requests.get(f"{provider.base_url}/.well-known/openid-configuration/", timeout=5).json()
    tokens = exchange(provider, authorize(provider, scope="openid photos:read")["code"]).json()

    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert document["issuer"] == claims["iss"] == f"{provider.base_url}/"


def test_a_configured_issuer_replaces_the_derived_one_everywhere(provider: FakeOIDC) -> None:
    provider.issuer = f"{provider.base_url}/oidc"

    document = requests.get(f"{provider.base_url}/.well-known/openid-configuration/", timeout=5).json()
    tokens = exchange(provider, authorize(provider, scope="openid")["code"]).json()

    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert document["issuer"] == claims["iss"] == f"{provider.base_url}/oidc"
    assert document["token_endpoint"] == f"{provider.base_url}/user/oauth/token/"


def test_authorization_without_a_pkce_challenge_is_refused(provider: FakeOIDC) -> None:
    back = authorize(provider, scope="photos:read", challenge=False)

    assert back == {
        "error": "invalid_request",
        "error_description": "Code challenge required.",
        "state": "st",
    }


def test_a_wrong_verifier_is_refused_and_leaves_the_code_usable(provider: FakeOIDC) -> None:
    code = authorize(provider, scope="photos:read")["code"]

    wrong = exchange(provider, code, verifier="w" * 64)
    right = exchange(provider, code)
    again = exchange(provider, code)

    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid_grant"})
    assert right.status_code == 200 and right.json()["scope"] == "photos:read"
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


def test_the_token_endpoint_crashes_for_an_application_without_oidc_asked_for_openid(
    provider: FakeOIDC,
) -> None:
    provider.add_client("plain-oauth", {REDIRECT}, algorithm="")

    crashed = exchange(
        provider,
        authorize(provider, scope="openid photos:read", client="plain-oauth")["code"],
        client="plain-oauth",
    )
    without_openid = exchange(
        provider, authorize(provider, scope="photos:read", client="plain-oauth")["code"], client="plain-oauth"
    )

    assert (crashed.status_code, crashed.headers["Content-Type"]) == (500, "text/html; charset=utf-8")
    assert without_openid.status_code == 200 and "id_token" not in without_openid.json()


def test_userinfo_refuses_a_dead_token_with_401_invalid_token(provider: FakeOIDC) -> None:
    tokens = exchange(provider, authorize(provider, scope="openid")["code"]).json()
    info = f"{provider.base_url}/user/oauth/info/"

    live = requests.get(info, headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=5)
    provider.expire_access_tokens()
    dead = requests.get(info, headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=5)

    assert (live.status_code, live.json()) == (200, {"sub": "1"})
    assert (dead.status_code, dead.json()["error"]) == (401, "invalid_token")
    assert dead.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_a_member_token_gets_403_for_an_album_the_member_may_not_open(
    provider: FakeOIDC, website: MemberAwareConcrexit
) -> None:
    website.add_album("open", "Open", [])
    website.add_album("closed", "Closed", [])
    website.accessible_to["1"] = {"open"}
    token = exchange(provider, authorize(provider, scope="openid photos:read")["code"]).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    albums = f"{website.base_url}/api/v2/photos/albums/"

    listed = requests.get(albums, headers=headers, timeout=5).json()["results"]
    closed = requests.get(f"{albums}closed/", headers=headers, timeout=5)

    assert [(album["slug"], album["accessible"]) for album in listed] == [("open", True), ("closed", False)]
    assert requests.get(f"{albums}open/", headers=headers, timeout=5).status_code == 200
    assert (closed.status_code, closed.json()) == (
        403,
        {"detail": "You do not have permission to perform this action."},
    )


def test_a_token_without_events_read_gets_403_from_the_events_endpoint(
    provider: FakeOIDC, website: MemberAwareConcrexit
) -> None:
    website.add_event(5, "Gala", dt.datetime(2024, 5, 3, 20, 0))
    photos_only = exchange(provider, authorize(provider, scope="photos:read")["code"]).json()["access_token"]
    both = exchange(provider, authorize(provider, scope="photos:read events:read")["code"]).json()[
        "access_token"
    ]
    event = f"{website.base_url}/api/v2/events/5/"

    refused = requests.get(event, headers={"Authorization": f"Bearer {photos_only}"}, timeout=5)
    allowed = requests.get(event, headers={"Authorization": f"Bearer {both}"}, timeout=5)

    assert (refused.status_code, refused.json()) == (
        403,
        {"detail": "You do not have permission to perform this action."},
    )
    assert allowed.status_code == 200 and allowed.json()["pk"] == 5
