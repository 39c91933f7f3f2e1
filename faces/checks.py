"""System checks for what Throwback needs to run (run by `manage.py check`)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register()
def check_throwback(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    problems: list[Error | Warning] = []
    threshold = settings.THROWBACK_MATCH_THRESHOLD
    if not 0.0 < threshold < 2.0:
        problems.append(
            Error(
                f"THROWBACK_MATCH_THRESHOLD is {threshold}; dlib distances lie in 0..2",
                hint="Use a value around 0.5 (default 0.49).",
                id="faces.E001",
            )
        )
    if importlib.util.find_spec("face_recognition_models") is None:
        problems.append(
            Error(
                "face_recognition_models is not installed: faces cannot be encoded",
                hint="pip install face_recognition_models 'setuptools<81'",
                id="faces.E002",
            )
        )
    media_root = Path(settings.MEDIA_ROOT)
    backend: str = settings.STORAGES["default"]["BACKEND"]
    uses_local_media = backend.endswith("FileSystemStorage")
    if uses_local_media and not _writable(media_root):
        problems.append(
            Error(
                f"MEDIA_ROOT {media_root} cannot be created or written",
                hint="Point MEDIA_ROOT (or THROWBACK_DATA_DIR) at a writable folder.",
                id="faces.E004",
            )
        )
    if settings.THALIA_URL_REFRESH_MARGIN_SECONDS >= settings.THALIA_URL_TTL_SECONDS:
        problems.append(
            Warning(
                "THALIA_URL_REFRESH_MARGIN_SECONDS is not below THALIA_URL_TTL_SECONDS: "
                "every page view would refresh the website's photo URLs",
                id="faces.W001",
            )
        )
    for name in ("THALIA_ENCODE_VARIANT", "THALIA_DISPLAY_VARIANT"):
        if getattr(settings, name) not in ("full", "large", "medium", "small"):
            problems.append(Error(f"{name} must be full, large, medium or small", id="faces.E003"))
    return problems


ENCODE_SELFIES_IN = ("encoder", "process", "inline")


@register()
def check_selfie_encoding(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Where selfies are encoded: the settings file may override what the environment allows."""
    problems = []
    if settings.THROWBACK_ENCODE_SELFIES_IN not in ENCODE_SELFIES_IN:
        problems.append(
            Error(
                f"THROWBACK_ENCODE_SELFIES_IN is {settings.THROWBACK_ENCODE_SELFIES_IN!r}: "
                "it must be encoder, process or inline",
                hint="encoder (the default) and process keep dlib's models out of the web workers.",
                id="faces.E005",
            )
        )
    timeout = settings.THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        problems.append(
            Error(
                f"THROWBACK_SELFIE_ENCODE_TIMEOUT_SECONDS is {timeout!r}: it must be a positive number",
                hint="The default, 60, leaves room for the model load under gunicorn's --timeout 120.",
                id="faces.E006",
            )
        )
    return problems


@register()
def check_selfie_waiters(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Uploads that wait for their analysis must leave a gunicorn worker threads for the pages.

    GUNICORN_THREADS is read by gunicorn.conf.py (default 8), not by Django,
    so it is read from the environment here.
    """
    try:
        threads = int(os.environ.get("GUNICORN_THREADS", "8"))
    except ValueError:
        return []  # gunicorn.conf.py refuses it at start-up
    waiters = settings.THROWBACK_SELFIE_WAITERS
    if waiters >= threads:
        return [
            Warning(
                f"THROWBACK_SELFIE_WAITERS is {waiters} with GUNICORN_THREADS {threads}: uploads waiting "
                "for their analysis can hold every thread of a worker, and its pages wait",
                hint="Keep THROWBACK_SELFIE_WAITERS below GUNICORN_THREADS (defaults 4 and 8).",
                id="faces.W004",
            )
        ]
    return []


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


# The CPU budget: an import of 10,000 photos within an hour on two cores (docs/accuracy.md).
MAX_CHEAP_UPSAMPLE = 2


@register()
def check_engine_options(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Engine options that are valid but cost far more than they gain on a CPU."""
    problems = []
    if settings.THROWBACK_DETECTOR == "cnn":
        problems.append(
            Warning(
                "THROWBACK_DETECTOR is cnn: dlib's CNN detector takes seconds per photo without a GPU",
                hint="Keep hog unless dlib is built with CUDA; see docs/accuracy.md for the cost.",
                id="faces.W002",
            )
        )
    if settings.THROWBACK_DETECT_UPSAMPLE > MAX_CHEAP_UPSAMPLE:
        problems.append(
            Warning(
                f"THROWBACK_DETECT_UPSAMPLE is {settings.THROWBACK_DETECT_UPSAMPLE}: each upsampling "
                "makes detection about four times slower",
                hint="Use at most 2; raise THROWBACK_ENCODE_MAX_SIDE to find smaller faces instead.",
                id="faces.W003",
            )
        )
    return problems


# Stored pc columns may differ from a fresh projection by float32 rounding only.
PROJECTION_CHECK_TOLERANCE = 1e-4
PROJECTION_CHECK_ROWS = 50


@register()
def check_projection_file(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The shipped projection (faces/projection.json) loads and fits the pc columns."""
    from faces import projection

    try:
        projection.load()
    except projection.ProjectionError as error:
        return [
            Error(
                f"The face projection cannot be used: {error}",
                hint="faces/projection.json is part of the code: restore it from the release "
                "(bench/fit_projection.py --write refits it).",
                id="faces.E010",
            )
        ]
    return []


@register(Tags.database)
def check_projection_columns(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[Error]:
    """A sample of stored rows carries the projection of its encoding (`manage.py check --database default`).

    Like Django's own database checks it reads only the databases it is
    given: none on a plain `check` or `run_checks()`.
    """
    import numpy as np
    from django.db import DatabaseError

    from faces import projection
    from faces.fields import ENCODING_FIELDS, PROJECTION_FIELDS, PROJECTION_NORM_FIELD
    from faces.models import FaceEncoding
    from members.models import ReferenceFace

    try:
        projection.axes()
    except projection.ProjectionError:
        return []  # faces.E010 says why
    problems = []
    for alias, model in (
        (alias, model) for alias in databases or () for model in (FaceEncoding, ReferenceFace)
    ):
        try:
            rows = list(
                model.objects.using(alias)
                .order_by("-id")
                .values_list(*ENCODING_FIELDS, *PROJECTION_FIELDS, PROJECTION_NORM_FIELD)[
                    :PROJECTION_CHECK_ROWS
                ]
            )
        except DatabaseError:
            return []  # not migrated yet: the migration fills the columns
        if not rows:
            continue
        values = np.asarray(rows, dtype=np.float64)
        coordinates = projection.project(values[:, : len(ENCODING_FIELDS)])
        stored = values[:, len(ENCODING_FIELDS) :]
        expected = np.concatenate([coordinates, (coordinates**2).sum(axis=1)[:, None]], axis=1)
        if np.abs(stored - expected).max() > PROJECTION_CHECK_TOLERANCE:
            problems.append(
                Error(
                    f"{model._meta.db_table}: the projection columns (pc0 …) do not match faces/projection.json",
                    hint="Matches could be missed. Run `manage.py build_face_index --reproject` to recompute them.",
                    id="faces.E011",
                )
            )
    return problems
