"""The 128 encoding columns, generated rather than typed out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from faces.projection import PROJECTION_SIZE, stored

ENCODING_SIZE = 128
ENCODING_FIELDS = tuple(f"field{i}" for i in range(ENCODING_SIZE))
# The encoding's coordinates on the principal axes of faces/projection.py,
# and the sum of their squares.
PROJECTION_FIELDS = tuple(f"pc{i}" for i in range(PROJECTION_SIZE))
PROJECTION_NORM_FIELD = "pc_norm2"


class RealField(models.FloatField):  # type: ignore[type-arg]
    """A single-precision float column (`real`).

    dlib's descriptor is float32, so double precision would store noise and
    make the distance scan read twice the bytes. SQLite's REAL is what it is.
    """

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "postgresql":
            return "real"
        return super().db_type(connection)


class EncodingModel(models.Model):
    """Abstract base: the columns field0 … field127, added below by code."""

    class Meta:
        abstract = True

    @property
    def encoding(self) -> np.ndarray:
        return np.array([getattr(self, column) for column in ENCODING_FIELDS], dtype=np.float32)

    def set_encoding(self, vector: Sequence[float] | np.ndarray) -> None:
        values = np.asarray(vector, dtype=np.float32)
        if values.shape != (ENCODING_SIZE,):
            raise ValueError(f"an encoding has {ENCODING_SIZE} values, not {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("an encoding must be finite")
        for column, value in zip(ENCODING_FIELDS, values.tolist(), strict=True):
            setattr(self, column, value)


for _column in ENCODING_FIELDS:
    EncodingModel.add_to_class(_column, RealField())


class ProjectedEncodingModel(EncodingModel):
    """Abstract base: the encoding, its projection pc0 … and pc_norm2 (faces/projection.py).

    The distance SQL compares the projection first, an exact pre-filter, so
    `set_encoding` always sets both; rows written without it (raw SQL,
    COPY) must fill the pc columns too (faces.matching.projection_refresh).
    """

    class Meta:
        abstract = True

    def set_encoding(self, vector: Sequence[float] | np.ndarray) -> None:
        super().set_encoding(vector)
        # Rounded to float32 here, as the column stores them: a value too small
        # for `real` becomes 0 (or a subnormal) instead of an error.
        coordinates, square = stored(self.encoding)
        for column, value in zip(PROJECTION_FIELDS, coordinates, strict=True):
            setattr(self, column, value)
        setattr(self, PROJECTION_NORM_FIELD, square)


for _column in (*PROJECTION_FIELDS, PROJECTION_NORM_FIELD):
    ProjectedEncodingModel.add_to_class(_column, RealField())
