"""manage.py purge_inactive: the retention policy, safe to run from cron."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from members.services import face_data_purge


class Command(BaseCommand):
    help = (
        "Delete the face data (selfies, encodings, matches, dismissals, consent) of members not seen "
        "for THROWBACK_RETENTION_DAYS, and selfie files no reference points to (idempotent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = face_data_purge(now=timezone.now())
        self.stdout.write(summary.line())
