"""The website's OAuth 2 / OpenID Connect provider, next to its API client (client.py).

concrexit (django-oauth-toolkit) describes its provider in a discovery
document at `<THALIA_OIDC_URL>/.well-known/openid-configuration/` (with the
slash: that is its route): the issuer its ID tokens carry (the site *with* a
trailing slash, e.g. "https://thalia.nu/") and the authorize, token,
userinfo and keys endpoints (under /user/oauth/). `provider()` reads it and
keeps it for DISCOVERY_CACHE_SECONDS; every request here and in the login
uses those endpoints, and the login checks `iss` against that issuer.

Logging in needs the document (it names the issuer). Throwback's own grant
(connect_thalia, renewals) is plain OAuth 2: a site that serves no document
(OpenID Connect switched off) gets concrexit's fixed layout under
/user/oauth/ instead; a site that cannot be reached is a transient failure.

The provider requires PKCE for the authorization-code flow and answers
refused requests with 400 (token endpoint) or 401/403. Errors become
`OAuthError(message, permanent=…)`: a refused grant is permanent
(reconnect), a time-out or 5xx transient.

With client.py and transport.py it is the only module that imports `requests`
(its own requests go through transport.py, with its deadline). The login's
own token, key and userinfo requests are made by mozilla-django-oidc, whose
errors (`requests` exceptions) thalia.login turns into its own, named here.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from thalia import transport

logger = logging.getLogger(__name__)

# A discovery document or token answer is a few kilobytes.
MAX_ANSWER_BYTES = 1024 * 1024
DISCOVERY_PATH = "/.well-known/openid-configuration/"
# The discovery document changes only when the site moves its endpoints or
# issuer: keep it an hour, as long as django-oauth-toolkit lets clients keep
# its keys (OIDC_JWKS_MAX_AGE_SECONDS). A failed read is not kept.
DISCOVERY_CACHE_SECONDS = 3600
# concrexit's layout, for the grant when the site serves no discovery document.
FALLBACK_PATHS = {"authorization_endpoint": "authorize/", "token_endpoint": "token/"}

# What mozilla-django-oidc raises when the provider answers an error status,
# and when it cannot be reached (or answers garbage).
ProviderHTTPError = requests.HTTPError
ProviderUnreachable = requests.RequestException


class OAuthError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class ProviderUnavailable(OAuthError):
    """No usable discovery document: the site cannot be reached (`unreachable`),
    or it answers without one (OpenID Connect off, a wrong THALIA_OIDC_URL)."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message, permanent=False)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Provider:
    """What the discovery document says: the ID tokens' issuer and the endpoints."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def discovery_url() -> str:
    return f"{settings.THALIA_OIDC_URL}{DISCOVERY_PATH}"


def provider() -> Provider:
    """The provider as its discovery document describes it, kept for DISCOVERY_CACHE_SECONDS.

    Raises ProviderUnavailable when the document cannot be had or does not
    name an issuer and endpoints on THALIA_OIDC_URL's own scheme and host.
    """
    url = discovery_url()
    key = f"thalia:oidc-discovery:{url}"
    cached = cache.get(key)
    if isinstance(cached, dict):
        return Provider(**cached)
    try:
        response = _send("GET", url)
    except transport.TransportError as exc:
        raise ProviderUnavailable(f"{url}: {exc}", unreachable=True) from exc
    if response.status != 200:
        raise ProviderUnavailable(
            f"{url}: HTTP {response.status}, no OpenID Connect discovery document", unreachable=False
        )
    try:
        found = _provider_from(json.loads(response.body))
    except ValueError as exc:
        raise ProviderUnavailable(f"{url}: {exc}", unreachable=False) from exc
    cache.set(key, dataclasses.asdict(found), DISCOVERY_CACHE_SECONDS)
    return found


def _provider_from(document: Any) -> Provider:
    """Check a discovery document; ValueError says what is wrong with it."""
    if not isinstance(document, dict):
        raise ValueError("the discovery document is not a JSON object")
    values = {}
    for field in dataclasses.fields(Provider):
        value = document.get(field.name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"the discovery document has no {field.name}")
        values[field.name] = value
    site = _origin(settings.THALIA_OIDC_URL)
    for name, value in values.items():
        # Codes, tokens and the client secret go to these: only to the configured site.
        if name != "issuer" and _origin(value) != site:
            raise ValueError(f"the discovery document's {name} {value!r} is not on {site}")
    return Provider(**values)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def endpoint(name: str) -> str:
    """The grant's `authorization_endpoint` or `token_endpoint`: discovered, else concrexit's layout.

    Raises ProviderUnavailable when the site cannot be reached at all.
    """
    try:
        return str(getattr(provider(), name))
    except ProviderUnavailable as exc:
        if exc.unreachable:
            raise
        fallback = f"{settings.THALIA_OIDC_URL}/user/oauth/{FALLBACK_PATHS[name]}"
        logger.warning("%s; using %s", exc, fallback)
        return fallback


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
    return f"{endpoint('authorization_endpoint')}?{urlencode(params)}"


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
    url = endpoint("token_endpoint")
    try:
        response = _send("POST", url, data={**data, **client_payload()})
    except transport.TransportError as exc:
        raise OAuthError(f"{url}: {exc}", permanent=False) from exc
    if response.status in (400, 401, 403):
        raise OAuthError(f"{url}: HTTP {response.status} {_error_of(response)}", permanent=True)
    if response.status != 200:
        raise OAuthError(f"{url}: HTTP {response.status}", permanent=False)
    try:
        body: Any = json.loads(response.body)
        lifetime = int(body.get("expires_in", 36000))
        return Tokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or ""),
            expires_at=timezone.now() + dt.timedelta(seconds=lifetime),
            scope=str(body.get("scope", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OAuthError(f"{url}: not a token answer", permanent=False) from exc


def _send(method: str, url: str, data: dict[str, str] | None = None) -> transport.Answer:
    """One request to the provider within THALIA_OIDC_TIMEOUT_SECONDS (connect and whole answer), not retried."""
    return transport.request(
        transport.make_session(0, retry_after_max_s=0),
        method,
        url,
        timeout_s=settings.THALIA_OIDC_TIMEOUT_SECONDS,
        max_bytes=MAX_ANSWER_BYTES,
        headers={"Accept": "application/json"},
        data=data,
    )


def _error_of(response: transport.Answer) -> str:
    try:
        return str(json.loads(response.body).get("error", ""))
    except (ValueError, AttributeError):
        return ""
