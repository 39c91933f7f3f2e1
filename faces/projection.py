"""A fixed orthonormal projection of the encoding: an exact pre-filter for the distance SQL.

The 128 numbers of a dlib encoding do not vary equally: a few directions
carry most of the differences between faces. `projection.json` (next to this
module, fitted once offline by bench/fit_projection.py from the real
encodings of the labelled photos) holds the first PROJECTION_SIZE principal
axes, orthonormal rows P. For any two encodings x and y

    |P(x - y)|² ≤ |x - y|²

(Pythagoras: the rest of x - y is orthogonal to the axes). Each stored face,
reference and centroid keeps Px as extra columns `pc0` … and |Px|² as
`pc_norm2` (faces.fields.ProjectedEncodingModel), so the generated WHERE
first compares |P(x - q)|² = |Px|² - 2 Px·Pq + |Pq|² with the limit: one
product and one sum per axis, half the work of squared differences. A face it
rejects is farther than the limit, so no match is ever lost; it only saves
the 128-term sum for the faces that are clearly too far. 29 axes keep 0.82
of the real encodings' variance; 29 is also what fits PostgreSQL's 32
columns of an index beside the cluster, id and pc_norm2 (faces.models). Of
synthetic faces 0.6-0.7 from a selfie, 2 % pass at 29 axes, 11 % at 24
(docs/performance.md). Axes need not be centred: differences cancel any mean.

Only NumPy here (no Django): the SQL that uses these columns is in
faces/matching.py, the system check that the file and the columns agree in
faces/checks.py.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ENCODING_SIZE = 128
# Principal axes kept as columns; faces.fields names one column per axis.
PROJECTION_SIZE = 29
PROJECTION_FILE = Path(__file__).with_name("projection.json")
# The stored columns are single precision: a coordinate or |Px|² may be off by
# about 1e-7 (|x| ≈ 1), and so the expanded sum by a few 1e-7; the projected
# bound is limit² + this slack (squared units), so the pre-filter can never
# drop a face that the exact 128-term sum would keep.
PROJECTION_SLACK = 1e-5
# Rows of the file must be orthonormal to this tolerance (checked when loaded).
ORTHONORMAL_TOLERANCE = 1e-6


class ProjectionError(ValueError):
    """The projection file is missing, malformed or not orthonormal."""


def load(path: Path | None = None) -> np.ndarray:
    """The axes in `path` (default PROJECTION_FILE; PROJECTION_SIZE × 128, float64); raises ProjectionError."""
    path = path or PROJECTION_FILE
    try:
        data = json.loads(path.read_text())
        axes = np.asarray(data["axes"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ProjectionError(f"{path}: {error}") from error
    if axes.shape != (PROJECTION_SIZE, ENCODING_SIZE):
        raise ProjectionError(f"{path}: axes are {axes.shape}, the columns need ({PROJECTION_SIZE}, 128)")
    if not np.isfinite(axes).all():
        raise ProjectionError(f"{path}: axes must be finite")
    gram = axes @ axes.T
    if np.abs(gram - np.eye(PROJECTION_SIZE)).max() > ORTHONORMAL_TOLERANCE:
        raise ProjectionError(f"{path}: axes are not orthonormal")
    return axes


@functools.cache
def axes() -> np.ndarray:
    """The shipped axes, read once per process."""
    return load()


def project(vectors: Sequence[float] | np.ndarray) -> np.ndarray:
    """The PROJECTION_SIZE coordinates of one encoding (a vector) or of n (n × PROJECTION_SIZE), float64."""
    values = np.asarray(vectors, dtype=np.float64)
    result: np.ndarray = values @ axes().T
    return result


def stored(vector: Sequence[float] | np.ndarray) -> tuple[list[float], float]:
    """The pc columns of one encoding as stored (float32) and their |Px|² (float32 of the float64 sum)."""
    coordinates = project(vector).astype(np.float32)
    square = np.float32((coordinates.astype(np.float64) ** 2).sum())
    return coordinates.tolist(), float(square)


def fit(encodings: np.ndarray, *, size: int = PROJECTION_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(axes size × 128, share of the variance along every axis) of encodings, by PCA.

    The axes are the covariance's leading eigenvectors, orthonormal to
    rounding; each axis's sign is fixed (largest component positive) so a refit on the
    same encodings gives the same file.
    """
    x = np.asarray(encodings, dtype=np.float64)
    values, vectors = np.linalg.eigh(np.cov(x.T))
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    chosen = vectors[:, :size].T.copy()
    signs = np.sign(chosen[np.arange(size), np.abs(chosen).argmax(axis=1)])
    chosen *= signs[:, None]
    # Re-orthonormalise in float64 (eigh's vectors already are, to ~1e-15).
    q, r = np.linalg.qr(chosen.T)
    chosen = (q * np.sign(np.diag(r))).T
    return chosen, values / values.sum()
