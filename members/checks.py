"""System checks for members: "Log in with Thalia" (and the website address it shares with connect_thalia)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_thalia_login(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    problems: list[Error] = []
    parts = urlsplit(settings.THALIA_OIDC_URL)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(
            Error(
                f"THALIA_OIDC_URL {settings.THALIA_OIDC_URL!r} is not an http(s) URL",
                hint="The website's address, e.g. https://thalia.nu (it defaults to THALIA_API_URL).",
                id="members.E001",
            )
        )
    if settings.THALIA_OIDC_CLIENT_ID and "openid" not in settings.THALIA_OIDC_SCOPES.split():
        problems.append(
            Error(
                f"THALIA_OIDC_SCOPES {settings.THALIA_OIDC_SCOPES!r} lacks `openid`",
                hint="Logging in needs an ID token: e.g. 'openid photos:read'.",
                id="members.E002",
            )
        )
    if settings.THALIA_OIDC_CLIENT_ID and "photos:read" not in settings.THALIA_OIDC_SCOPES.split():
        problems.append(
            Error(
                f"THALIA_OIDC_SCOPES {settings.THALIA_OIDC_SCOPES!r} lacks `photos:read`",
                hint="Throwback asks the site with the member's token which albums they may see.",
                id="members.E003",
            )
        )
    return problems
