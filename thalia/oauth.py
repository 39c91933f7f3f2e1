"""The website's OAuth 2 / OpenID Connect endpoints, next to its API client (client.py).

concrexit (django-oauth-toolkit) serves them under `/user/oauth/` of
THALIA_OIDC_URL (by default THALIA_API_URL's site). It requires PKCE for the
authorization-code flow and answers refused requests with 400 (token
endpoint) or 401/403. Errors become `OAuthError(message, permanent=…)`:
a refused grant is permanent (reconnect), a time-out or 5xx transient.

With client.py it is the only module that imports `requests`. The login's
own token, key and userinfo requests are made by mozilla-django-oidc, whose
errors (`requests` exceptions) thalia.login turns into its own, named here.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.utils import timezone

USER_AGENT = "Throwback/1.0 (+face search for association photos)"

# What mozilla-django-oidc raises when the provider answers an error status,
# and when it cannot be reached (or answers garbage).
ProviderHTTPError = requests.HTTPError
ProviderUnreachable = requests.RequestException


class OAuthError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def endpoint(name: str) -> str:
    """`authorize`, `token`, `userinfo` or `jwks` of the configured provider."""
    paths = {"authorize": "authorize/", "token": "token/", "userinfo": "info/", "jwks": "keys/"}
    return f"{settings.THALIA_OIDC_URL}/user/oauth/{paths[name]}"


def issuer() -> str:
    """The `iss` of the provider's ID tokens: its site, as django-oauth-toolkit says."""
    return str(settings.THALIA_OIDC_URL)


def login_enabled() -> bool:
    return bool(settings.THALIA_OIDC_CLIENT_ID)


def pkce_pair() -> tuple[str, str]:
    """A PKCE (RFC 7636) code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)  # 64 characters
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(*, redirect_uri: str, scope: str, state: str, challenge: str) -> str:
    params = {
        "response_type": "code",
        "client_id": settings.THALIA_OIDC_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{endpoint('authorize')}?{urlencode(params)}"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: dt.datetime
    scope: str


def exchange_code(*, code: str, verifier: str, redirect_uri: str) -> Tokens:
    """Tokens for an authorization code (PKCE); OAuthError when refused."""
    return _token_request(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
    )


def refresh(refresh_token: str) -> Tokens:
    """New tokens for a refresh token. The provider revokes the old access
    token and (rotation) the old refresh token: keep the returned ones."""
    return _token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})


def client_payload() -> dict[str, str]:
    """client_id, and client_secret for a confidential client (none for a public one)."""
    payload = {"client_id": settings.THALIA_OIDC_CLIENT_ID}
    if settings.THALIA_OIDC_CLIENT_SECRET:
        payload["client_secret"] = settings.THALIA_OIDC_CLIENT_SECRET
    return payload


def _token_request(data: dict[str, str]) -> Tokens:
    url = endpoint("token")
    try:
        response = requests.post(
            url,
            data={**data, **client_payload()},
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=settings.THALIA_OIDC_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise OAuthError(f"{url}: {exc.__class__.__name__}", permanent=False) from exc
    if response.status_code in (400, 401, 403):
        raise OAuthError(f"{url}: HTTP {response.status_code} {_error_of(response)}", permanent=True)
    if response.status_code != 200:
        raise OAuthError(f"{url}: HTTP {response.status_code}", permanent=False)
    try:
        body: Any = response.json()
        lifetime = int(body.get("expires_in", 36000))
        return Tokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or ""),
            expires_at=timezone.now() + dt.timedelta(seconds=lifetime),
            scope=str(body.get("scope", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OAuthError(f"{url}: not a token answer", permanent=False) from exc


def _error_of(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        return ""
