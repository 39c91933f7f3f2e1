"""The authentication backend for "Log in with Thalia" (OpenID Connect).

mozilla-django-oidc does the protocol: the code exchange with PKCE, the
ID token's RS256 signature against the provider's keys (JWKS) and its nonce,
the userinfo request. This subclass adds what it leaves open: the endpoints
and the issuer come from the provider's discovery document
(`oauth.provider()`), the ID token's issuer (exactly the discovered one),
audience and expiry are checked, and members are found by the site's id
(`sub`), never by e-mail address. Every way the library fails becomes
`LoginFailed(reason)`, so the views see no HTTP or JWT errors.

mozilla-django-oidc reads its other configuration through
`get_settings(name)`; Throwback's backend and views answer these names from
the THALIA_* settings at call time (`get_setting`).
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from members import services
from members.models import Member
from thalia import oauth

logger = logging.getLogger(__name__)


def derived() -> dict[str, Any]:
    return {
        "OIDC_RP_CLIENT_ID": settings.THALIA_OIDC_CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": settings.THALIA_OIDC_CLIENT_SECRET,
        "OIDC_RP_SIGN_ALGO": "RS256",
        "OIDC_RP_SCOPES": settings.THALIA_OIDC_SCOPES,
        # concrexit requires PKCE for the authorization-code flow.
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        "OIDC_TIMEOUT": settings.THALIA_OIDC_TIMEOUT_SECONDS,
        "OIDC_AUTHENTICATION_CALLBACK_URL": "thalia:callback",
        "OIDC_CREATE_USER": True,
        "OIDC_STORE_ACCESS_TOKEN": False,  # thalia.session keeps it, with its expiry
        "OIDC_STORE_ID_TOKEN": False,
    }


def get_setting(name: str, *default: Any) -> Any:
    values = derived()
    if name in values:
        return values[name]
    return import_from_settings(name, *default)


class LoginFailed(Exception):
    """A Thalia login that cannot go on; `reason` is a key of thalia.views.LOGIN_FAILURES."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def login_failure(exc: Exception) -> LoginFailed:
    """The LoginFailed for what the provider, mozilla-django-oidc or PyJWT raised."""
    detail = f"{exc.__class__.__name__}: {exc}"
    if isinstance(exc, oauth.ProviderUnavailable):
        return LoginFailed("unreachable" if exc.unreachable else "provider_error", detail)
    if isinstance(exc, oauth.ProviderHTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        if status == 500:
            # django-oauth-toolkit crashes signing an ID token for an application without an
            # algorithm ("No OIDC support"): a matter for the website's admin, not the member.
            detail += " (is the OAuth application's algorithm set to RSA at the website?)"
        # 400 is the token endpoint refusing the code (invalid_grant); 401 a wrong client
        # secret, a matter for the log and the admin rather than the member.
        return LoginFailed("code" if status == 400 else "provider_error", detail)
    if isinstance(exc, oauth.ProviderUnreachable):
        return LoginFailed("unreachable", detail)
    return LoginFailed("token", detail)


class ThaliaBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    get_settings = staticmethod(get_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's __init__: it reads the endpoints, and Django builds this backend
        # for every login, password ones too. They come from discovery in authenticate().
        self.OIDC_RP_CLIENT_ID = settings.THALIA_OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.THALIA_OIDC_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = "RS256"
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Member | None:
        """The member for the code the website sent back, or None (not a Thalia login, or refused).

        Raises LoginFailed when the provider cannot be asked or its answer does not check out.
        """
        if request is None or not oauth.login_enabled() or "code" not in request.GET:
            return None  # a password login, or logging in with Thalia is off
        self._token_info: dict[str, Any] = {}
        try:
            found = oauth.provider()
            self.OIDC_OP_TOKEN_ENDPOINT = found.token_endpoint
            self.OIDC_OP_USER_ENDPOINT = found.userinfo_endpoint
            self.OIDC_OP_JWKS_ENDPOINT = found.jwks_uri
            self._issuer = found.issuer
            member: Member | None = super().authenticate(request, **kwargs)
        except (
            oauth.OAuthError,
            oauth.ProviderUnreachable,
            SuspiciousOperation,
            jwt.PyJWTError,
            KeyError,
            TypeError,
            ValueError,
        ) as exc:
            raise login_failure(exc) from exc
        if member is not None and self._token_info.get("access_token"):
            # The callback view keeps it in the session and fetches the member's albums.
            request.thalia_login = {  # type: ignore[attr-defined]
                "access_token": str(self._token_info["access_token"]),
                "expires_in": int(self._token_info.get("expires_in") or 36000),
            }
        return member

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        # A public client (no secret) must not send an empty client_secret.
        if not payload.get("client_secret"):
            payload.pop("client_secret", None)
        info: dict[str, Any] = super().get_token(payload)
        self._token_info = info
        return info

    def _verify_jws(self, payload: Any, key: Any) -> dict[str, Any]:
        """The signature (as the library does), then issuer, audience and expiry."""
        claims: dict[str, Any] = super()._verify_jws(payload, key)
        try:
            jwt.decode(
                payload,
                key,
                algorithms=["RS256"],
                audience=self.get_settings("OIDC_RP_CLIENT_ID"),
                issuer=self._issuer,  # exactly the discovered one, as OpenID Connect asks
                options={"require": ["exp", "iat", "sub"]},
                leeway=60,
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return Member.objects.filter(thalia_id=str(claims["sub"]))

    def create_user(self, claims: dict[str, Any]) -> Member:
        return services.member_from_claims(claims=claims)

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = super().get_userinfo(access_token, id_token, payload)
        if str(info.get("sub")) != str(payload.get("sub")):
            raise SuspiciousOperation("userinfo is about another member than the ID token")
        return info
