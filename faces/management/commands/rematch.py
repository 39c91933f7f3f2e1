"""manage.py rematch: recompute every stored match, e.g. after a threshold change."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from faces.services import matches_rebuild
from members.lookalikes import lookalikes_rebuild


class Command(BaseCommand):
    help = "Recompute all matches between members' references and photo faces, and the look-alike selfie pairs (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        total = matches_rebuild()
        pairs = lookalikes_rebuild()
        self.stdout.write(
            f"Rematched: {total} matches, {pairs} look-alike selfie pairs "
            f"at threshold {settings.THROWBACK_MATCH_THRESHOLD}"
        )
