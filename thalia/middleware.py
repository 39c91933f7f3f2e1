"""Keeps a Thalia member's accessible albums fresh while their session lasts."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from thalia.session import album_access_refresh_if_stale


def album_access_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        album_access_refresh_if_stale(request)
        return get_response(request)

    return middleware
