"""Throwback settings: every value comes from the environment (see README).

The defaults run the embedded demo: SQLite and media files under ./data.
Production sets DATABASE_URL, SECRET_KEY, ALLOWED_HOSTS and DEBUG=false.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from throwback.env import (
    email_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_site_url,
    env_str,
)

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
    "thalia",
    "throwback",  # the project's own system checks (throwback/checks.py)
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
    # The selfie encoder writes beside the web workers: a transaction that reads
    # and then writes would fail at once ("database is locked") instead of
    # waiting, so every transaction takes the write lock when it begins.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

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

# --- Web security: production defaults and login throttling ------------------
# THROWBACK_PRODUCTION=true (set it in production, see docs/deployment.md)
# switches on what `manage.py check --deploy` asks for, behind a TLS-terminating
# reverse proxy that sets X-Forwarded-Proto: HTTPS redirects, HTTPS-only
# cookies and a year of HSTS. Each value can still be set on its own. Off by
# default so `make run` works on plain http://127.0.0.1.
THROWBACK_PRODUCTION = env_bool("THROWBACK_PRODUCTION", False)
if THROWBACK_PRODUCTION and DEBUG:
    raise ImproperlyConfigured("THROWBACK_PRODUCTION=true needs DEBUG=false")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", THROWBACK_PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG and SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", 365 * 24 * 3600 if THROWBACK_PRODUCTION else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", THROWBACK_PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS: list[str] = []
if not SECURE_HSTS_PRELOAD:
    # Asking browsers to preload HSTS for the whole domain is the domain
    # owner's decision (and hard to undo), not a default of this app.
    SILENCED_SYSTEM_CHECKS.append("security.W021")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The covering indexes of the projected pre-filter (faces/projection.py)
    # serve PostgreSQL; SQLite (the demo) ignores their included columns.
    SILENCED_SYSTEM_CHECKS.append("models.W040")

# Login throttling (django-axes, members/throttle.py): after
# THROWBACK_LOGIN_FAILURE_LIMIT failed logins for one username from one address,
# that pair is refused (HTTP 429) for THROWBACK_LOGIN_COOLOFF_MINUTES. The pair,
# not the address alone, so a stranger cannot lock a member out from elsewhere;
# and THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT failures from one address for any
# usernames lock that address (password spraying). The address is the client's
# behind THROWBACK_TRUSTED_PROXIES reverse proxies (X-Forwarded-For, counted
# from the right); with 0, REMOTE_ADDR and no header is believed.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # axes asks to be last
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("THROWBACK_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("THROWBACK_LOGIN_FAILURE_LIMIT", 5, minimum=1)
THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT = env_int(
    "THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT", 20, minimum=AXES_FAILURE_LIMIT
)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("THROWBACK_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "members.throttle.LoginThrottleHandler"
THROWBACK_TRUSTED_PROXIES = env_int("THROWBACK_TRUSTED_PROXIES", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "members.throttle.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
# The lock-out is a page of the site (how long, a way back), not a bare text.
AXES_LOCKOUT_CALLABLE = "members.views.locked_out"
AXES_VERBOSE = False  # no start-up banner on every manage.py command; lockouts are still logged
# --- end of web security -------------------------------------------------------

# --- Mail (issue 16): "new photos of you" digests and password resets ----------
# EMAIL_URL (smtp://, smtp+tls://, smtp+ssl://, console://) or the separate
# EMAIL_HOST… variables; `make run` prints mails to the console. The digest
# is sent after an import has finished, so a slow or dead server costs one
# EMAIL_TIMEOUT per run and never fails the import.
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if env_str("EMAIL_URL", "").strip():
    globals().update(email_url("EMAIL_URL", env_str("EMAIL_URL", "")))
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL exclude each other: set one")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Throwback <throwback@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where members reach Throwback: the links in mails (My photos, unsubscribe, password reset).
THROWBACK_SITE_URL = env_site_url("THROWBACK_SITE_URL", "http://127.0.0.1:8000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Throwback -------------------------------------------------------------
# Euclidean distance below which two dlib encodings are taken as one person.
THROWBACK_MATCH_THRESHOLD = env_float("THROWBACK_MATCH_THRESHOLD", 0.49)
# --- How references are used (issue 14, docs/accuracy.md) ---------------------
# Local scaling: each reference's limit is THROWBACK_MATCH_SCALE × its distance
# to the stored face at the nearest tenth of all faces (faces/limits.py), at
# most THROWBACK_MATCH_CAP; 0 gives every reference THROWBACK_MATCH_THRESHOLD.
THROWBACK_MATCH_SCALE = env_float("THROWBACK_MATCH_SCALE", 0.0, minimum=0.0, maximum=2.0)
THROWBACK_MATCH_CAP = env_float("THROWBACK_MATCH_CAP", 0.55, minimum=0.01, maximum=1.99)
# In a photo a member is at most one face and a face at most one member (the
# closest pairs first); off only to measure what it gives (evaluate).
THROWBACK_ONE_FACE_ONE_PERSON = env_bool("THROWBACK_ONE_FACE_ONE_PERSON", True)
# Learned references: a member's most confident matches (at most this many per
# selfie) become extra references, never shown; 0 turns learning off.
THROWBACK_LEARNED_PER_SELFIE = env_int("THROWBACK_LEARNED_PER_SELFIE", 3, minimum=0)
# "Is this you?": faces within this × a reference's limit (and outside it) are
# offered to the member; 1 offers none.
THROWBACK_SUGGEST_BAND = env_float("THROWBACK_SUGGEST_BAND", 1.15, minimum=1.0, maximum=2.0)
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
# Where a selfie is analysed: "encoder" (the default) queues the upload for a
# long-lived encoder process (`manage.py run_encoder`, started by gunicorn.conf.py)
# that keeps dlib's models loaded, so the request answers at once and web
# workers never load dlib; "process" analyses in the request, in a child process
# per upload (faces.isolated: loads dlib's models, ~1.3 s more CPU, and exits);
# "inline" analyses in the request, in the web worker, which then keeps the models.
THROWBACK_ENCODE_SELFIES_IN = env_choice(
    "THROWBACK_ENCODE_SELFIES_IN", "encoder", ("encoder", "process", "inline")
)
# "process": the child is killed after this long (model load included).
THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS = env_int("THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS", 60, minimum=1)
# "encoder": at most this many uploads wait or are analysed at once; beyond it
# an upload is refused with 503 and Retry-After (the member tries again later).
THROWBACK_SELFIE_QUEUE_MAX = env_int("THROWBACK_SELFIE_QUEUE_MAX", 100, minimum=1)
# ... and at most this many of them from one member, so one member cannot fill
# the queue for everyone: beyond it 429 with Retry-After.
THROWBACK_SELFIE_PENDING_PER_MEMBER = env_int("THROWBACK_SELFIE_PENDING_PER_MEMBER", 2, minimum=1)
# "encoder": how long `POST /api/references/` without `Prefer: respond-async`
# waits for the analysis before answering 202 with the status URL instead.
THROWBACK_SELFIE_WAIT_SECONDS = env_int("THROWBACK_SELFIE_WAIT_SECONDS", 120, minimum=1)
# ... and at most this many such requests of one web worker wait at once (the
# rest answer 202 at once), so a burst of them leaves threads for the pages.
THROWBACK_SELFIE_WAITERS = env_int("THROWBACK_SELFIE_WAITERS", 4, minimum=0)
# An encoder renews its claim on an upload every third of this; a claim not
# renewed for this long belonged to an encoder that died, and is queued again
# (THROWBACK_ENCODER_ATTEMPTS analyses in all), then refused.
THROWBACK_ENCODER_LEASE_SECONDS = env_int("THROWBACK_ENCODER_LEASE_SECONDS", 60, minimum=3)
THROWBACK_ENCODER_ATTEMPTS = env_int("THROWBACK_ENCODER_ATTEMPTS", 2, minimum=1)
# No upload stays pending forever, even with no encoder alive: one analysed for
# longer than this (a hung analysis) is refused `encoding_timeout`, one queued
# for longer than the second is refused `encoding_failed`. Enforced by the
# encoders and whenever the member's status page, API or selfie page reads it.
THROWBACK_SELFIE_ANALYSIS_TIMEOUT_SECONDS = env_int(
    "THROWBACK_SELFIE_ANALYSIS_TIMEOUT_SECONDS", 600, minimum=1
)
THROWBACK_SELFIE_QUEUE_MAX_AGE_SECONDS = env_int("THROWBACK_SELFIE_QUEUE_MAX_AGE_SECONDS", 1800, minimum=1)
# How often an idle encoder looks for queued uploads.
THROWBACK_ENCODER_POLL_SECONDS = env_float("THROWBACK_ENCODER_POLL_SECONDS", 0.25, minimum=0.01, maximum=60)
# --- end of face engine options -------------------------------------------
# Selfie uploads: file size and decoded pixel limits, references per member.
THROWBACK_UPLOAD_MAX_MB = env_int("THROWBACK_UPLOAD_MAX_MB", 10, minimum=1)
THROWBACK_MAX_IMAGE_PIXELS = env_int("THROWBACK_MAX_IMAGE_PIXELS", 50_000_000, minimum=1)
THROWBACK_MAX_REFERENCES = env_int("THROWBACK_MAX_REFERENCES", 5, minimum=1)
# Selfie uploads per member in any hour (refused uploads count too: a photo
# without a face costs the encoder tens of seconds of CPU); 0: no limit.
THROWBACK_UPLOADS_PER_HOUR = env_int("THROWBACK_UPLOADS_PER_HOUR", 10, minimum=0)
# Import: encoding processes (0 = one per CPU core).
THROWBACK_IMPORT_WORKERS = env_int("THROWBACK_IMPORT_WORKERS", 0, minimum=0)
# Import: a photo claimed by a run or Celery worker for longer than this is
# taken to be abandoned (its process died on another host) and encoded again.
THROWBACK_CLAIM_TIMEOUT_SECONDS = env_int("THROWBACK_CLAIM_TIMEOUT_SECONDS", 1800, minimum=1)
# Import: a run stops cleanly after this long (0: never), recording why; the
# next run continues where it stopped. Keeps a nightly cron under `flock -n`
# from being skipped because one run never ends.
THROWBACK_IMPORT_DEADLINE_SECONDS = env_int("THROWBACK_IMPORT_DEADLINE_SECONDS", 6 * 3600, minimum=0)
# Import: a run that would mark more than this share of a source's albums
# missing (or all of them) refuses to: an empty answer or an unmounted folder
# would otherwise hide every album. `import_albums --allow-missing` overrides.
THROWBACK_IMPORT_MAX_MISSING_SHARE = env_float(
    "THROWBACK_IMPORT_MAX_MISSING_SHARE", 0.5, minimum=0, maximum=1
)
# Anyone may create a local account (the demo); off in production.
THROWBACK_ALLOW_SIGNUP = env_bool("THROWBACK_ALLOW_SIGNUP", False)
THROWBACK_PHOTOS_PER_PAGE = env_int("THROWBACK_PHOTOS_PER_PAGE", 60, minimum=1)

# --- Privacy and retention (issue 7) ---------------------------------------
# `manage.py purge_inactive` deletes the face data of members not seen (last
# login, else joined) for longer than this many days.
THROWBACK_RETENTION_DAYS = env_int("THROWBACK_RETENTION_DAYS", 365, minimum=1)
# Selfie files no reference points to (a failed delete) are swept by the same
# command once older than this; younger ones may belong to an upload in flight.
THROWBACK_SELFIE_FILE_GRACE_HOURS = env_int("THROWBACK_SELFIE_FILE_GRACE_HOURS", 24, minimum=1)
# Content-Security-Policy on every response (throwback/middleware.py): no inline
# scripts, images only from here and the website's file hosts.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "throwback.middleware.ContentSecurityPolicyMiddleware",
)
# --- Face index (issue 6: matching speed) ------------------------------------
# A selfie is compared with the faces of the k-means clusters whose centroid
# lies within its limit + THROWBACK_FACE_INDEX_REACH, at most
# THROWBACK_FACE_INDEX_PROBE of them, nearest first (and all unassigned faces)
# once `manage.py build_face_index` has run; off, or before the first build,
# every face is compared (faces/index.py).
THROWBACK_FACE_INDEX = env_bool("THROWBACK_FACE_INDEX", True)
THROWBACK_FACE_INDEX_REACH = env_float("THROWBACK_FACE_INDEX_REACH", 0.1, minimum=0.0, maximum=2.0)
THROWBACK_FACE_INDEX_PROBE = env_int("THROWBACK_FACE_INDEX_PROBE", 1000, minimum=1)

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
# The longest one request to the website may take, from connecting to the last
# byte of the answer (each retry gets its own): a server that answers a byte at a
# time is cut off here (thalia/transport.py).
THALIA_TIMEOUT_SECONDS = env_float("THALIA_TIMEOUT_SECONDS", 20.0, minimum=0.1)
# A page that must refresh photo URLs waits at most this long for the website.
THALIA_PAGE_TIMEOUT_SECONDS = env_float("THALIA_PAGE_TIMEOUT_SECONDS", 3.0, minimum=0.1)
THALIA_RETRIES = env_int("THALIA_RETRIES", 3, minimum=0)
# A 429 or 503 asking to come back later (Retry-After) is waited for at most this long before a retry.
THALIA_RETRY_AFTER_MAX_SECONDS = env_float("THALIA_RETRY_AFTER_MAX_SECONDS", 60.0, minimum=0)
# The largest API answer (album list page, album, event) read; a longer one is
# dropped as it streams in. Photo files have their own limit (100 MB).
THALIA_MAX_ANSWER_BYTES = env_int("THALIA_MAX_ANSWER_BYTES", 20 * 1024 * 1024, minimum=1024)
# Hosts besides THALIA_API_URL's that may serve photo files (the site's CDN).
THALIA_FILE_HOSTS = env_list("THALIA_FILE_HOSTS", [])

# --- Log in with Thalia; Throwback's own connection to the website ----------
# (all in thalia/; see docs/architecture.md)
AUTHENTICATION_BACKENDS += ["thalia.login.ThaliaBackend"]  # after axes and the local accounts
# Refreshes a Thalia member's accessible albums when they are stale.
MIDDLEWARE.insert(
    MIDDLEWARE.index("axes.middleware.AxesMiddleware"), "thalia.session.album_access_middleware"
)
# The OpenID Connect provider: concrexit serves it under /user/oauth/ of its site.
THALIA_OIDC_URL = env_str("THALIA_OIDC_URL", THALIA_API_URL).rstrip("/")
# "Log in with Thalia" is offered only when a client id is set.
THALIA_OIDC_CLIENT_ID = env_str("THALIA_OIDC_CLIENT_ID", "")
THALIA_OIDC_CLIENT_SECRET = env_str("THALIA_OIDC_CLIENT_SECRET", "")
THALIA_OIDC_SCOPES = env_str("THALIA_OIDC_SCOPES", "openid photos:read")
THALIA_CONNECT_SCOPES = env_str("THALIA_CONNECT_SCOPES", "photos:read events:read")
THALIA_OIDC_TIMEOUT_SECONDS = env_float("THALIA_OIDC_TIMEOUT_SECONDS", 10.0)
# A member's accessible albums are fetched again after this long (when their token still works).
THALIA_ALBUM_ACCESS_MAX_AGE_SECONDS = env_int("THALIA_ALBUM_ACCESS_MAX_AGE_SECONDS", 3600, minimum=0)
# --- Celery: distributed import (issue 6) ---------------------------------
# Unset: import_albums encodes in local processes and Celery is never imported.
# Set (e.g. redis://127.0.0.1:6379/0): import_albums queues one task per photo
# for `celery -A throwback worker` processes on any machine.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
CELERY_TASK_DEFAULT_QUEUE = env_str("THROWBACK_CELERY_QUEUE", "throwback")
CELERY_TASK_IGNORE_RESULT = True  # progress is read from the photos' status
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # tasks take seconds: no hoarding
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
