"""State changes for the website account: members who log in with Thalia,
what the site lets each of them see, and Throwback's own connection.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from faces.sources.concrexit import ConcrexitSource
from members.models import Member
from thalia import oauth
from thalia.models import AlbumAccess, ThaliaConnection

logger = logging.getLogger(__name__)

# An access token this close to its expiry is renewed before use.
RENEW_MARGIN = dt.timedelta(minutes=5)


# --- Members ---------------------------------------------------------------


def member_from_claims(*, claims: Mapping[str, Any]) -> Member:
    """The member linked to the website member `claims["sub"]`, made at the first login.

    Found by the site's id alone, so a changed name or e-mail address at the
    site still finds the same member. A new member gets the username
    `thalia-<id>` (with a random suffix if a local account took it) and no
    password: they can only log in through the website.
    """
    sub = str(claims["sub"])
    member = Member.objects.filter(thalia_id=sub).first()
    if member is not None:
        return member
    username = f"thalia-{sub}"[:150]
    if Member.objects.filter(username=username).exists():
        username = f"{username[:140]}-{secrets.token_hex(4)}"
    member = Member(username=username, thalia_id=sub)
    member.set_unusable_password()
    member.full_clean(exclude=["password"])
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError:
        # The same member's first login in another tab, a moment earlier.
        return Member.objects.get(thalia_id=sub)
    logger.info("new member %s for website member %s", member.username, sub)
    return member


def album_access_store(*, member: Member, slugs: Iterable[str]) -> None:
    """Make the member's accessible website albums exactly `slugs`."""
    wanted = set(slugs)
    with transaction.atomic():
        AlbumAccess.objects.filter(member=member).exclude(album_slug__in=wanted).delete()
        AlbumAccess.objects.bulk_create(
            [AlbumAccess(member=member, album_slug=slug) for slug in sorted(wanted)], ignore_conflicts=True
        )


def album_access_refresh(*, member: Member, access_token: str) -> int:
    """Ask the website, with the member's own token, which albums they may
    open, and store that set. Returns its size; raises SourceError (and
    keeps the stored set) when the site cannot be asked."""
    source = ConcrexitSource(
        settings.THALIA_API_URL,
        access_token,
        timeout_s=settings.THALIA_PAGE_TIMEOUT_SECONDS,
        retries=0,
        file_hosts=tuple(settings.THALIA_FILE_HOSTS),
    )
    slugs = [album.source_id for album in source.albums()]  # albums() leaves out inaccessible ones
    album_access_store(member=member, slugs=slugs)
    return len(slugs)


# --- Throwback's own connection ------------------------------------------------


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
