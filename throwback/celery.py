"""The Celery app for the distributed import (`celery -A throwback worker`).

Configured from Django's settings (the CELERY_* names, see settings.py and
the README); the tasks are in faces/imports/tasks.py. Only imported when
CELERY_BROKER_URL is set or a Celery worker starts.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "throwback.settings")

app = Celery("throwback")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The import's tasks live in the faces.imports package, not at an app's top
# level, where autodiscover_tasks() would look by default.
app.autodiscover_tasks(["faces.imports"])
