"""A Content-Security-Policy header on every response.

Scripts, styles, fonts and connections only from this site (so an injected
inline script does not run); images also from the association website and
its file hosts, which serve the signed photo URLs. The admin works under it
(Django's admin has no inline scripts or styles).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def content_security_policy() -> str:
    """The policy for the current settings (THALIA_API_URL, THALIA_FILE_HOSTS)."""
    return _policy(settings.THALIA_API_URL, tuple(settings.THALIA_FILE_HOSTS))


@functools.lru_cache(maxsize=8)
def _policy(api_url: str, file_hosts: tuple[str, ...]) -> str:
    """Built once per settings value rather than once a request."""
    api = urlsplit(api_url)
    image_sources = ["'self'", f"{api.scheme}://{api.netloc}"]
    image_sources += [f"https://{host}" for host in file_hosts]
    return "; ".join(
        [
            "default-src 'self'",
            f"img-src {' '.join(dict.fromkeys(image_sources))}",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Read per request: tests and a changed THALIA_API_URL need no restart.
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        return response
