"""Every page and API route, read from the URL resolver (the admin left out).

Tests that must cover each route (test_security's probes, test_hostile_params'
property test) take them from here, so a route added later is covered at once.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver


def routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Route strings such as `photos/<int:photo_id>/file/`, in URL configuration order.

    The admin is Django's own and has its own tests (test_security's admin probes).
    """
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue
            found.extend(routes(entry, route))
        elif isinstance(entry, URLPattern):
            found.append(route)
    return found
