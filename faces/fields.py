"""The 128 encoding columns, generated rather than typed out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import models

ENCODING_SIZE = 128
ENCODING_FIELDS = tuple(f"field{i}" for i in range(ENCODING_SIZE))


class RealField(models.FloatField):
    """A single-precision float column (`real`).

    dlib's descriptor is float32, so double precision would store noise and
    make the distance scan read twice the bytes. SQLite's REAL is what it is.
    """

    def db_type(self, connection) -> str:  # type: ignore[no-untyped-def]
        if connection.vendor == "postgresql":
            return "real"
        return super().db_type(connection)


def encoding_model(name: str, module: str) -> type[models.Model]:
    """An abstract model with the columns field0 … field127."""
    attrs: dict[str, object] = {
        "__module__": module,
        "Meta": type("Meta", (), {"abstract": True}),
    }
    for column in ENCODING_FIELDS:
        attrs[column] = RealField()
    attrs["encoding"] = property(_get_encoding)
    attrs["set_encoding"] = _set_encoding
    return type(name, (models.Model,), attrs)


def _get_encoding(self: models.Model) -> np.ndarray:
    return np.array([getattr(self, column) for column in ENCODING_FIELDS], dtype=np.float32)


def _set_encoding(self: models.Model, vector: Sequence[float] | np.ndarray) -> None:
    values = np.asarray(vector, dtype=np.float32)
    if values.shape != (ENCODING_SIZE,):
        raise ValueError(f"an encoding has {ENCODING_SIZE} values, not {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("an encoding must be finite")
    for column, value in zip(ENCODING_FIELDS, values.tolist(), strict=True):
        setattr(self, column, value)


EncodingModel = encoding_model("EncodingModel", __name__)
