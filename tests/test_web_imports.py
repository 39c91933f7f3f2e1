"""Web processes load dlib's models only when they encode a selfie."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_importing_every_view_and_the_wsgi_app_does_not_load_face_recognition() -> None:
    code = (
        "import django, sys; django.setup(); import throwback.urls, throwback.wsgi; "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "print(sorted(m for m in ('face_recognition', 'dlib', 'face_recognition_models') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
