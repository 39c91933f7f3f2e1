"""manage.py rematch: recompute every stored match, e.g. after a threshold change."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from faces.services import matches_rebuild


class Command(BaseCommand):
    help = "Recompute all matches between members' references and photo faces (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        total = matches_rebuild()
        self.stdout.write(f"Rematched: {total} matches at threshold {settings.THROWBACK_MATCH_THRESHOLD}")
