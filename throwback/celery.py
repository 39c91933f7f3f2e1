"""The Celery app for the distributed import (`celery -A throwback worker`).

Configured from Django's settings (the CELERY_* names, see settings.py and
the README); tasks are found in each app's tasks.py. Only imported when
CELERY_BROKER_URL is set or a Celery worker starts.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "throwback.settings")

app = Celery("throwback")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
