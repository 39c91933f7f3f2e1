"""Throwback's Django project.

As Celery's Django guide has it, the Celery app is loaded here so that tasks
bind to it, but only when a broker is configured: without CELERY_BROKER_URL
Throwback never imports Celery (`celery -A throwback` still finds
throwback.celery).
"""

import os

if os.environ.get("CELERY_BROKER_URL"):
    from throwback.celery import app as celery_app

    __all__ = ("celery_app",)
