"""System checks for the project as a whole (what no single app owns): static files, the proxy."""

from __future__ import annotations

from typing import Any

from django.conf import STATICFILES_STORAGE_ALIAS, settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.checks import Error, Tags, Warning, register
from django.core.files.storage import storages

COLLECTSTATIC_HINT = (
    "Run `python manage.py collectstatic --noinput` with the same settings (after every upgrade too)."
)
SHOWN_MISSING = 5  # static files named in the message when more lack a manifest entry


@register(Tags.staticfiles, deploy=True)
def check_static_manifest(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The static files manifest exists and lists every static file, when the manifest storage is on.

    With CompressedManifestStaticFilesStorage (production's default) every
    `{% static %}` looks its hashed name up in STATIC_ROOT/staticfiles.json; a
    missing manifest or entry makes every page answer 500. Only `check --deploy`
    runs this: `make run` and the tests run collectstatic or use plain storage.
    """
    config = settings.STORAGES[STATICFILES_STORAGE_ALIAS]
    try:
        storage = storages.create_storage(config)  # a fresh one: the manifest is read now
    except ValueError as exc:  # ManifestFilesMixin could not parse the manifest
        return [
            Error(
                f"The static files manifest cannot be read: {exc}",
                hint=COLLECTSTATIC_HINT,
                id="throwback.E001",
            )
        ]
    if not isinstance(storage, ManifestFilesMixin):
        return []
    if storage.read_manifest() is None:
        return [
            Error(
                f"The static files manifest {settings.STATIC_ROOT}/{storage.manifest_name} is missing: "
                "every page would answer 500",
                hint=COLLECTSTATIC_HINT,
                id="throwback.E001",
            )
        ]
    missing = sorted(
        path
        for finder in finders.get_finders()
        for path, _ in finder.list(["CVS", ".*", "*~"])
        if storage.clean_name(path) not in storage.hashed_files
    )
    if missing:
        shown = ", ".join(missing[:SHOWN_MISSING]) + (", …" if len(missing) > SHOWN_MISSING else "")
        return [
            Error(
                f"The static files manifest lacks {len(missing)} static files ({shown}): "
                "pages that use them would answer 500",
                hint=COLLECTSTATIC_HINT,
                id="throwback.E002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_trusted_proxies(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """In production (behind the TLS proxy) the login limits need the client's address, not the proxy's."""
    if settings.THROWBACK_PRODUCTION and settings.THROWBACK_TRUSTED_PROXIES == 0:
        return [
            Warning(
                "THROWBACK_TRUSTED_PROXIES is 0 behind the reverse proxy: every login seems to come from "
                "the proxy's address, so failed logins from anyone lock a username for everyone, and "
                f"{settings.THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT} failures lock every login",
                hint="Set it to the number of proxies that append to X-Forwarded-For (1 behind the nginx "
                "of docs/deployment.md).",
                id="throwback.W001",
            )
        ]
    return []
