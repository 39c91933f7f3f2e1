"""manage.py rematch: recompute every reference's limit and every match, e.g. after a rule change."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from faces.models import Match
from faces.services import matches_rebuild, references_refresh


class Command(BaseCommand):
    help = (
        "Recompute every reference's limit, the learned references and all matches between members' "
        "references and photo faces (idempotent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        matches_rebuild()
        refreshed = references_refresh()
        total = Match.objects.count()
        self.stdout.write(
            f"Rematched: {total} matches; {refreshed.limits_changed} limits changed, "
            f"{refreshed.learned_added} learned references added, {refreshed.learned_removed} removed"
        )
