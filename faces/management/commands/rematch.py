"""manage.py rematch: recompute every match after a threshold change or a bug fix."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from faces.models import Match
from faces.services import matches_rebuild, references_refresh
from members.lookalikes import lookalikes_rebuild


class Command(BaseCommand):
    help = (
        "Recompute every reference's limit, the learned references, all matches between members' "
        "references and photo faces, and the look-alike selfie pairs (idempotent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        matches_rebuild()
        refreshed = references_refresh()
        pairs = lookalikes_rebuild()
        total = Match.objects.count()
        self.stdout.write(
            f"Rematched: {total} matches; {refreshed.limits_changed} limits changed, "
            f"{refreshed.learned_added} learned references added, {refreshed.learned_removed} removed; "
            f"{pairs} look-alike selfie pairs"
        )
