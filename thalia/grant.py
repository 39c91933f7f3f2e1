"""Throwback's own grant at the website (`manage.py connect_thalia`): kept,
handed to the importer, and renewed before it expires or after a refusal.

The HTTP requests go through `thalia.oauth`; this module
holds the state changes on the single `ThaliaConnection` row.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from thalia import oauth
from thalia.models import ThaliaConnection

logger = logging.getLogger(__name__)

# An access token this close to its expiry is renewed before use.
RENEW_MARGIN = dt.timedelta(minutes=5)


def connection_store(*, tokens: oauth.Tokens, connected_by: str) -> ThaliaConnection:
    """Keep the grant from `connect_thalia`, replacing any earlier one."""
    if not tokens.refresh_token:
        raise oauth.OAuthError("the website gave no refresh token", permanent=True)
    now = timezone.now()
    connection, _ = ThaliaConnection.objects.update_or_create(
        pk=ThaliaConnection.SINGLETON_PK,
        defaults={
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at,
            "scope": tokens.scope,
            "connected_by": connected_by[:150],
            "connected_at": now,
            "refreshed_at": None,
            "last_error": "",
        },
    )
    return connection


def connection_connect(*, code: str, verifier: str, redirect_uri: str, connected_by: str) -> ThaliaConnection:
    """Exchange the admin's authorization code (PKCE) and keep the grant; OAuthError when refused."""
    tokens = oauth.exchange_code(code=code, verifier=verifier, redirect_uri=redirect_uri)
    return connection_store(tokens=tokens, connected_by=connected_by)


def importer_token() -> str | None:
    """Throwback's access token, renewed first when it expires within 5
    minutes; None when Throwback was never connected. Raises OAuthError when
    a needed renewal fails."""
    connection = ThaliaConnection.objects.filter(pk=ThaliaConnection.SINGLETON_PK).first()
    if connection is None:
        return None
    if connection.expires_at - RENEW_MARGIN > timezone.now():
        return connection.access_token
    return importer_token_renew(rejected=connection.access_token)


def importer_token_renew(*, rejected: str) -> str:
    """A new access token in place of `rejected` (expired, or refused by the site).

    Renewal revokes the old access token and rotates the refresh token, so
    it must happen once however many processes find the token stale: the
    connection row is locked (SELECT … FOR UPDATE) for the refresh request,
    and whoever gets the lock after someone else renewed just takes the new
    token. Raises OAuthError when the site refuses (reconnect) or is down.
    """
    try:
        with transaction.atomic():
            connection = (
                ThaliaConnection.objects.select_for_update().filter(pk=ThaliaConnection.SINGLETON_PK).first()
            )
            if connection is None:
                raise oauth.OAuthError("Throwback is not connected to the website", permanent=True)
            if connection.access_token != rejected:
                return connection.access_token
            tokens = oauth.refresh(connection.refresh_token)
            connection.access_token = tokens.access_token
            connection.refresh_token = tokens.refresh_token or connection.refresh_token
            connection.expires_at = tokens.expires_at
            connection.scope = tokens.scope or connection.scope
            connection.refreshed_at = timezone.now()
            connection.last_error = ""
            connection.save()
    except oauth.OAuthError as exc:
        # Kept for the admin (after the rollback); the next attempt tries again.
        ThaliaConnection.objects.filter(pk=ThaliaConnection.SINGLETON_PK).update(last_error=str(exc)[:2000])
        raise
    logger.info("renewed Throwback's access token for the website")
    return tokens.access_token
