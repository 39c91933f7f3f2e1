"""System checks for the website: "Log in with Thalia" (and the address it shares with connect_thalia)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

# Scopes logging in with Thalia needs: (scope, why, check id).
REQUIRED_SCOPES = (
    ("openid", "Logging in needs an ID token: e.g. 'openid photos:read'.", "thalia.E002"),
    (
        "photos:read",
        "Throwback asks the site with the member's token which albums they may see.",
        "thalia.E003",
    ),
)


@register()
def check_thalia_login(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    problems: list[Error] = []
    parts = urlsplit(settings.THALIA_OIDC_URL)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(
            Error(
                f"THALIA_OIDC_URL {settings.THALIA_OIDC_URL!r} is not an http(s) URL",
                hint="The website's address, e.g. https://thalia.nu (it defaults to THALIA_API_URL).",
                id="thalia.E001",
            )
        )
    if settings.THALIA_OIDC_CLIENT_ID:
        scopes = settings.THALIA_OIDC_SCOPES.split()
        problems += [
            Error(f"THALIA_OIDC_SCOPES {settings.THALIA_OIDC_SCOPES!r} lacks `{scope}`", hint=hint, id=code)
            for scope, hint, code in REQUIRED_SCOPES
            if scope not in scopes
        ]
    return problems
