"""Per-reference match limits: local scaling over the stored faces (docs/accuracy.md).

A reference matches the photo faces within its own `match_limit`. With
THROWBACK_MATCH_SCALE > 0 that limit is

    min(THROWBACK_MATCH_CAP, THROWBACK_MATCH_SCALE × d_share(reference))

minus EXTRA_SELFIE_TIGHTEN for each of the member's selfies beyond the first,
where d_share is the reference's distance to the stored face at the SHARE
quantile of its distances to all stored faces (the k-th nearest, k = SHARE ×
faces). A face in a crowded part of the face space (many strangers close by)
gets a tighter limit than an unusual one. SHARE is a tenth rather than "a few
per cent": a member's own photos must not fill the neighbourhood, and on the
development set a member is in up to 4 % of the faces.

The quantile is taken over a sample of at most SAMPLE_MAX faces (the k-th
nearest of a sample estimates the same quantile), so computing the limits of
every reference costs one read of the sample and NumPy work. With SCALE 0, or
fewer than MIN_FACES stored faces (the quantile would be noise), the base
limit is THROWBACK_MATCH_THRESHOLD.

Several selfies: each is another chance for a stranger's face to fall within
a limit, so at one limit for all a member with three selfies saw 3.7 times
the false matches of a member with one (0.51 against 0.14 per 1,000 pairs on
the development set, bench/accuracy_sim.py); cross-validated, the best limit
was 0.49–0.50 for one selfie and 0.46–0.47 for three. Tightening each of the
member's limits by EXTRA_SELFIE_TIGHTEN per extra selfie keeps both at the
target. Only NumPy here; the SQL that compares faces with
these limits is in faces/matching.py.
"""

from __future__ import annotations

import math

import numpy as np
from django.conf import settings

from faces.fields import ENCODING_FIELDS
from faces.models import FaceEncoding

SHARE = 0.1
MIN_FACES = 200
SAMPLE_MAX = 20_000
# References scored against the sample per NumPy step (bounds memory: rows × sample floats).
CHUNK = 256
# A recomputed limit that moved less than this keeps the stored one (no rematch).
LIMIT_TOLERANCE = 0.002
# Every limit of a member tightens by this much for each selfie beyond the first.
EXTRA_SELFIE_TIGHTEN = 0.01


def face_sample(*, using: str = "default") -> np.ndarray:
    """Encodings of at most SAMPLE_MAX stored faces (every n-th by id), n × 128 float64.

    Empty when local scaling is off (THROWBACK_MATCH_SCALE 0, the default):
    every limit is then the threshold, and reading the sample cost a selfie's
    analysis more than a second at 10,000 stored faces (bench/burst.py).
    """
    if settings.THROWBACK_MATCH_SCALE <= 0:
        return np.empty((0, len(ENCODING_FIELDS)), dtype=np.float64)
    faces = FaceEncoding.objects.using(using)
    total = faces.count()
    if total > SAMPLE_MAX:
        step = math.ceil(total / SAMPLE_MAX)
        ids = faces.order_by("id").values_list("id", flat=True)[::step]
        faces = faces.filter(id__in=list(ids))
    rows = list(faces.values_list(*ENCODING_FIELDS))
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(ENCODING_FIELDS))


def limits_for(vectors: np.ndarray, sample: np.ndarray, *, selfies: np.ndarray | int = 1) -> np.ndarray:
    """The match limit of each encoding (rows of vectors) given a sample of the stored faces.

    `selfies` is the number of selfies of each encoding's member (or one
    number for all).
    """
    vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, len(ENCODING_FIELDS))
    extra = np.maximum(np.broadcast_to(np.asarray(selfies), (len(vectors),)) - 1, 0)
    result: np.ndarray = np.maximum(_base_limits(vectors, sample) - EXTRA_SELFIE_TIGHTEN * extra, 0.0)
    return result


def _base_limits(vectors: np.ndarray, sample: np.ndarray) -> np.ndarray:
    scale = settings.THROWBACK_MATCH_SCALE
    if scale <= 0 or len(sample) < MIN_FACES:
        return np.full(len(vectors), float(settings.THROWBACK_MATCH_THRESHOLD))
    k = max(1, math.ceil(SHARE * len(sample)))
    squares = (sample * sample).sum(axis=1)
    result = np.empty(len(vectors))
    for start in range(0, len(vectors), CHUNK):
        rows = vectors[start : start + CHUNK]
        d2 = (rows * rows).sum(axis=1)[:, None] + squares[None, :] - 2.0 * rows @ sample.T
        kth = np.sqrt(np.maximum(np.partition(d2, k - 1, axis=1)[:, k - 1], 0.0))
        result[start : start + CHUNK] = np.minimum(settings.THROWBACK_MATCH_CAP, scale * kth)
    return result


def limit_for(vector: np.ndarray, *, selfies: int = 1, using: str = "default") -> float:
    """The limit of one new reference of a member with `selfies` selfies (reads the sample)."""
    return float(limits_for(vector, face_sample(using=using), selfies=selfies)[0])
