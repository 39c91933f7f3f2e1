"""Test settings: the real PostgreSQL server plus an SQLite alias for the
matching tests, fast hashing, media in a temporary folder."""

import os
import tempfile

import dj_database_url

os.environ.setdefault("SECRET_KEY", "test-secret-key")

from throwback.settings import *  # noqa: E402, F403

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/throwback")
    ),
    # The same generated SQL must also run on the embedded default.
    "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:", "TEST": {"NAME": None}},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = tempfile.mkdtemp(prefix="throwback-test-media-")
STATIC_ROOT = tempfile.mkdtemp(prefix="throwback-test-static-")
THALIA_API_URL = "http://127.0.0.1:9"
THALIA_ACCESS_TOKEN = ""
THROWBACK_IMPORT_WORKERS = 1
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Selfies are encoded in this process: a child process per upload would add
# its model load (seconds) to every upload test. tests/test_isolated_encoding.py
# runs the default, THROWBACK_ENCODE_SELFIES_IN=process, through the same views.
THROWBACK_ENCODE_SELFIES_IN = "inline"
# Selfies match on their own here, so the tests of uploads, deletes and privacy
# count exactly the selfie's matches; tests/test_learning.py turns learned
# references on (the default, THROWBACK_LEARNED_PER_SELFIE=3).
THROWBACK_LEARNED_PER_SELFIE = 0
