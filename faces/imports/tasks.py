"""Celery: the task `faces.import_photo` and `enqueue()`, which queues it.

The only module of the import that imports Celery: loaded by Celery workers
(throwback/celery.py finds it) and by `import_albums` when CELERY_BROKER_URL
is set. The task's body is distributed.import_photo.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import shared_task
from django.conf import settings

from faces.imports import distributed


@shared_task(name="faces.import_photo", ignore_result=True)  # type: ignore[untyped-decorator]
def import_photo(photo_id: int) -> str:
    """Claim, encode and store one photo; see distributed.import_photo."""
    return distributed.import_photo(photo_id)


def enqueue(photo_ids: Sequence[int]) -> None:
    """Queue one task per photo on CELERY_TASK_DEFAULT_QUEUE, over one broker connection."""
    if not photo_ids:
        return
    from throwback.celery import app

    with app.producer_or_acquire() as producer:
        for photo_id in photo_ids:
            import_photo.apply_async(
                args=(photo_id,), queue=settings.CELERY_TASK_DEFAULT_QUEUE, producer=producer
            )
