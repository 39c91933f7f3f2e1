"""Throwback settings: every value comes from the environment (see README).

The defaults run the embedded demo: SQLite and media files under ./data.
Production sets DATABASE_URL, SECRET_KEY, ALLOWED_HOSTS and DEBUG=false.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from throwback.env import env_bool, env_choice, env_float, env_int, env_list, env_str

# Lets classes like ModelAdmin[Album] be subscripted at run time, as the type hints need.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("THROWBACK_DATA_DIR", str(BASE_DIR / "data")))


def secret_key_from_file(path: Path) -> str:
    """The signing key stored in path, made (random, mode 0600) if it is missing.

    No key is written in the code, so none is publicly known, and sessions
    survive restarts. The file appears whole or not at all (a hard link to a
    finished temporary file), so workers starting at once all read one key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")  # mode 0600
        try:
            with os.fdopen(handle, "w") as file:
                file.write(secrets.token_urlsafe(50))
            # Fails when another process made it first: then use theirs.
            with contextlib.suppress(FileExistsError):
                path.hardlink_to(temporary)
        finally:
            Path(temporary).unlink()
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty: delete it to make a new key, or set SECRET_KEY")
    return key


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "") or secret_key_from_file(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "members",
    "faces",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "throwback.urls"
WSGI_APPLICATION = "throwback.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "throwback.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Import workers and web requests write concurrently: wait for the lock
    # instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "members.Member"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "members:photos"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "Europe/Amsterdam")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))

# Media storage: local files by default; S3 (or any S3-compatible store)
# through django-storages when AWS_STORAGE_BUCKET_NAME is set. Media are never
# served publicly: photos go through a view that checks the member is matched.
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "")
_media_backend: dict[str, Any] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if AWS_STORAGE_BUCKET_NAME:
    _media_backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
STORAGES = {
    "default": _media_backend,
    "staticfiles": {
        "BACKEND": env_str("STATICFILES_STORAGE", "whitenoise.storage.CompressedManifestStaticFilesStorage")
    },
}

# Request bodies above these sizes go to a temporary file instead of memory
# (the selfie size limit itself is THROWBACK_UPLOAD_MAX_MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The size limit first: CsrfViewMiddleware parses uploads before any view, so
# only a global handler keeps files beyond THROWBACK_UPLOAD_MAX_MB off the disk.
FILE_UPLOAD_HANDLERS = [
    "members.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Security: production (DEBUG=false) behind a TLS-terminating reverse proxy.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG and SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Throwback -------------------------------------------------------------
# Euclidean distance below which two dlib encodings are taken as one person.
THROWBACK_MATCH_THRESHOLD = env_float("THROWBACK_MATCH_THRESHOLD", 0.49)
# --- Face engine options: defaults measured in docs/accuracy.md -------------
# Photos are downscaled so their longest side is at most this before encoding.
THROWBACK_ENCODE_MAX_SIDE = env_int("THROWBACK_ENCODE_MAX_SIDE", 1000, minimum=64)
# Times dlib's HOG detector upsamples before looking (finds smaller faces, ~4× the cost each).
THROWBACK_DETECT_UPSAMPLE = env_int("THROWBACK_DETECT_UPSAMPLE", 1, minimum=0)
# "hog" (CPU) or "cnn" (dlib's CNN detector: seconds per photo without a GPU).
THROWBACK_DETECTOR = env_choice("THROWBACK_DETECTOR", "hog", ("hog", "cnn"))
# Re-samplings averaged into each photo face's encoding (cost grows linearly).
THROWBACK_ENCODE_JITTERS = env_int("THROWBACK_ENCODE_JITTERS", 1, minimum=1)
# The same for a selfie: encoded once per upload, so it can afford more.
THROWBACK_SELFIE_JITTERS = env_int("THROWBACK_SELFIE_JITTERS", 10, minimum=1)
# Landmark model the encoder aligns faces with: "large" (68 points) or "small" (5 points).
THROWBACK_LANDMARKS = env_choice("THROWBACK_LANDMARKS", "large", ("small", "large"))
# --- end of face engine options -------------------------------------------
# Selfie uploads: file size and decoded pixel limits, references per member.
THROWBACK_UPLOAD_MAX_MB = env_int("THROWBACK_UPLOAD_MAX_MB", 10, minimum=1)
THROWBACK_MAX_IMAGE_PIXELS = env_int("THROWBACK_MAX_IMAGE_PIXELS", 50_000_000, minimum=1)
THROWBACK_MAX_REFERENCES = env_int("THROWBACK_MAX_REFERENCES", 5, minimum=1)
# Import: encoding processes (0 = one per CPU core).
THROWBACK_IMPORT_WORKERS = env_int("THROWBACK_IMPORT_WORKERS", 0, minimum=0)
# Anyone may create a local account (the demo); off in production.
THROWBACK_ALLOW_SIGNUP = env_bool("THROWBACK_ALLOW_SIGNUP", False)
THROWBACK_PHOTOS_PER_PAGE = env_int("THROWBACK_PHOTOS_PER_PAGE", 60, minimum=1)

# The association's website (concrexit) photos API.
THALIA_API_URL = env_str("THALIA_API_URL", "https://thalia.nu").rstrip("/")
THALIA_ACCESS_TOKEN = env_str("THALIA_ACCESS_TOKEN", "")
# Which file variant is downloaded for encoding, and which one members see.
THALIA_ENCODE_VARIANT = env_str("THALIA_ENCODE_VARIANT", "large")
THALIA_DISPLAY_VARIANT = env_str("THALIA_DISPLAY_VARIANT", "large")
# Signed file URLs live 3 hours on the site; treat them as stale sooner and
# refresh them when a page would show one that goes stale within the margin.
THALIA_URL_TTL_SECONDS = env_int("THALIA_URL_TTL_SECONDS", 2 * 3600 + 30 * 60, minimum=1)
THALIA_URL_REFRESH_MARGIN_SECONDS = env_int("THALIA_URL_REFRESH_MARGIN_SECONDS", 15 * 60, minimum=0)
THALIA_TIMEOUT_SECONDS = env_float("THALIA_TIMEOUT_SECONDS", 20.0)
# A page that must refresh photo URLs waits at most this long for the website.
THALIA_PAGE_TIMEOUT_SECONDS = env_float("THALIA_PAGE_TIMEOUT_SECONDS", 3.0)
THALIA_RETRIES = env_int("THALIA_RETRIES", 3, minimum=0)
# Hosts besides THALIA_API_URL's that may serve photo files (the site's CDN).
THALIA_FILE_HOSTS = env_list("THALIA_FILE_HOSTS", [])
