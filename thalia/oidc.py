"""mozilla-django-oidc's settings, derived from Throwback's THALIA_* ones.

mozilla-django-oidc reads its configuration through `get_settings(name)`;
Throwback's backend and views answer these names from THALIA_OIDC_URL and
the client settings at call time, so the endpoints follow concrexit's layout
and tests can point them at a local provider.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from mozilla_django_oidc.utils import import_from_settings

from thalia import oauth


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
