"""Celery tasks: imported by Celery workers and when import_albums queues photos.

Only loaded with CELERY_BROKER_URL set; the logic lives in faces/distributed.py.
"""

from __future__ import annotations

from celery import shared_task

from faces import distributed


@shared_task(name="faces.import_photo", ignore_result=True)  # type: ignore[untyped-decorator]
def import_photo(photo_id: int) -> str:
    """Claim, encode and store one photo; see distributed.import_photo."""
    return distributed.import_photo(photo_id)
