"""The authentication backend for "Log in with Thalia" (OpenID Connect).

mozilla-django-oidc does the protocol: the code exchange with PKCE, the
ID token's RS256 signature against the provider's keys (JWKS) and its nonce,
the userinfo request. This subclass adds what it leaves open: the ID token's
issuer, audience and expiry are checked, and members are found by the
site's id (`sub`), never by e-mail address.

mozilla-django-oidc reads its configuration through `get_settings(name)`;
Throwback's backend and views answer these names from THALIA_OIDC_URL and
the client settings at call time (`get_setting`), so the endpoints follow
concrexit's layout and tests can point them at a local provider.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
from django.conf import settings
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
        "OIDC_OP_AUTHORIZATION_ENDPOINT": oauth.endpoint("authorize"),
        "OIDC_OP_TOKEN_ENDPOINT": oauth.endpoint("token"),
        "OIDC_OP_USER_ENDPOINT": oauth.endpoint("userinfo"),
        "OIDC_OP_JWKS_ENDPOINT": oauth.endpoint("jwks"),
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


class ThaliaBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    get_settings = staticmethod(get_setting)

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Member | None:
        if request is None or not oauth.login_enabled() or "code" not in request.GET:
            return None  # a password login, or logging in with Thalia is off
        self._token_info: dict[str, Any] = {}
        member: Member | None = super().authenticate(request, **kwargs)
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
                issuer=oauth.issuer(),
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
