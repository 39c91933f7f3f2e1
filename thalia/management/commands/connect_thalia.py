"""manage.py connect_thalia: give Throwback its own access to the website."""

from __future__ import annotations

import getpass
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from thalia import grant, oauth

SCOPES_NEEDED = "photos:read lists the albums and their photos; events:read gives albums their dates."


class Command(BaseCommand):
    help = (
        "Connect Throwback to the association's website once: open the printed address, allow "
        "access with an account that may see the albums, and paste the code shown afterwards. "
        "Throwback keeps the refresh token and renews its access token itself."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--redirect-uri",
            required=True,
            help="Throwback's /accounts/thalia/code/ address as registered at the website, "
            "e.g. https://throwback.example.org/accounts/thalia/code/",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.THALIA_OIDC_CLIENT_ID:
            raise CommandError("THALIA_OIDC_CLIENT_ID is not set: register Throwback at the website first")
        redirect_uri = options["redirect_uri"]
        verifier, challenge = oauth.pkce_pair()
        state = secrets.token_urlsafe(16)
        try:
            url = oauth.authorization_url(
                redirect_uri=redirect_uri,
                scope=settings.THALIA_CONNECT_SCOPES,
                state=state,
                challenge=challenge,
            )
        except oauth.OAuthError as exc:
            raise CommandError(f"The website cannot be reached: {exc}") from exc
        self.stdout.write(f"Asking for the scopes {settings.THALIA_CONNECT_SCOPES}. {SCOPES_NEEDED}")
        self.stdout.write(
            "Open this address, log in with an account that may see the albums and allow access:"
        )
        self.stdout.write(f"\n  {url}\n")
        self.stdout.flush()
        answer = input("Paste the code shown afterwards (or the whole address you were sent to): ")
        code, returned_state = parse_answer(answer)
        if returned_state is not None and returned_state != state:
            raise CommandError(
                "That code belongs to another attempt (its state differs): run connect_thalia again"
            )
        try:
            connection = grant.connection_connect(
                code=code, verifier=verifier, redirect_uri=redirect_uri, connected_by=getpass.getuser()
            )
        except oauth.OAuthError as exc:
            raise CommandError(f"The website did not connect Throwback: {exc}") from exc
        expires = timezone.localtime(connection.expires_at).strftime("%Y-%m-%d %H:%M")
        self.stdout.write(
            f"Connected to {settings.THALIA_OIDC_URL} with scope {connection.scope or '(unknown)'}; "
            f"the access token lasts until {expires} and is renewed automatically."
        )
        granted = connection.scope.split()
        if granted and "events:read" not in granted:
            self.stdout.write(
                self.style.WARNING(
                    "Without events:read imported albums get no date. Add events:read to "
                    "THALIA_CONNECT_SCOPES (it is in the default) and run connect_thalia again."
                )
            )


def parse_answer(answer: str) -> tuple[str, str | None]:
    """(code, state or None) from "CODE STATE" (the code page), an address, or a bare code."""
    answer = answer.strip()
    if not answer:
        raise CommandError("No code given")
    if "://" in answer or answer.startswith("/"):
        query = parse_qs(urlsplit(answer).query)
        if "error" in query:
            raise CommandError(f"The website refused: {query['error'][0]}")
        if "code" not in query:
            raise CommandError("That address has no code in it")
        return query["code"][0], query.get("state", [None])[0]
    parts = answer.split()
    if len(parts) > 2:
        raise CommandError("Expected the code and the state, separated by a space")
    return parts[0], parts[1] if len(parts) == 2 else None
