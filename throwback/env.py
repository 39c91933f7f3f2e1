"""Typed readers for environment variables.

Every setting comes from the environment with a safe default; a value that
cannot be parsed stops start-up with ImproperlyConfigured instead of being
silently ignored.
"""

from __future__ import annotations

import math
import os
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, not {raw!r}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum:g}, not {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of a fixed set of words (compared in lower case)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return value


# EMAIL_URL schemes: (Django backend, use STARTTLS, use implicit TLS, default port).
EMAIL_SCHEMES = {
    "smtp": ("django.core.mail.backends.smtp.EmailBackend", False, False, 25),
    "smtp+tls": ("django.core.mail.backends.smtp.EmailBackend", True, False, 587),
    "submission": ("django.core.mail.backends.smtp.EmailBackend", True, False, 587),
    "smtp+ssl": ("django.core.mail.backends.smtp.EmailBackend", False, True, 465),
    "smtps": ("django.core.mail.backends.smtp.EmailBackend", False, True, 465),
    "console": ("django.core.mail.backends.console.EmailBackend", False, False, 0),
}


def email_url(name: str, raw: str) -> dict[str, object]:
    """Django's EMAIL_* settings from a mail server URL.

    `smtp://user:password@host:25` (plain), `smtp+tls://…:587` or
    `submission://…` (STARTTLS), `smtp+ssl://…:465` or `smtps://…` (TLS from
    the start), `console://` (print mails to standard output). User and
    password are percent-decoded, so `%40` in them is an `@`.
    """
    parts = urlsplit(raw.strip())
    if parts.scheme not in EMAIL_SCHEMES:
        raise ImproperlyConfigured(
            f"{name} must start with one of {', '.join(s + '://' for s in EMAIL_SCHEMES)}, not {raw!r}"
        )
    backend, use_tls, use_ssl, default_port = EMAIL_SCHEMES[parts.scheme]
    if parts.scheme == "console":
        return {"EMAIL_BACKEND": backend}
    try:
        port = parts.port or default_port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a port that is not a number: {raw!r}") from None
    if not parts.hostname:
        raise ImproperlyConfigured(f"{name} names no mail server host: {raw!r}")
    return {
        "EMAIL_BACKEND": backend,
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
    }


def env_site_url(name: str, default: str) -> str:
    """An absolute http(s) address without a trailing slash (links in mails)."""
    raw = os.environ.get(name, default).strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// address like https://example.org, not {raw!r}"
        )
    return raw.rstrip("/")
