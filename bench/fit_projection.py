"""Fit faces/projection.json: the principal axes of the real encodings (run once, offline).

The axes come from the real dlib encodings of the labelled photos
(bench/real_encodings.py, ../shared/faces); only the axes are written, no
encoding. The product never refits: the file is part of the code, and the
columns pc0 … of every face were computed with it (a new file needs a
migration that recomputes them, see faces/migrations/0010_projection.py).

    .venv/bin/python bench/fit_projection.py            # print the variance per axis
    .venv/bin/python bench/fit_projection.py --write    # and (re)write faces/projection.json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import real_encodings
from common import REPO, out  # noqa: E402 - bench/ is on sys.path

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from faces import projection  # noqa: E402 - after the path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {projection.PROJECTION_FILE}")
    args = parser.parse_args()
    encodings, labels = real_encodings.load()
    axes, share = projection.fit(encodings)
    kept = float(share[: projection.PROJECTION_SIZE].sum())
    out(
        f"{len(encodings)} real encodings of {len(set(labels.tolist()))} identities; "
        f"{projection.PROJECTION_SIZE} axes keep {kept:.3f} of the variance"
    )
    out("cumulative share: " + ", ".join(f"{k}: {share[:k].sum():.3f}" for k in (4, 8, 16, 24, 32, 48, 64)))
    if args.write:
        about = (
            "Principal axes of dlib face encodings (faces/projection.py); fitted by bench/fit_projection.py"
        )
        head = {"about": about, "encodings": len(encodings), "variance_kept": round(kept, 4)}
        rows = ",\n".join(json.dumps([float(f"{v:.9g}") for v in row]) for row in axes)
        projection.PROJECTION_FILE.write_text(json.dumps(head)[:-1] + ', "axes": [\n' + rows + "\n]}\n")
        written = projection.load()
        out(
            f"wrote {projection.PROJECTION_FILE} (max |PPᵀ - I| {np.abs(written @ written.T - np.eye(len(written))).max():.1e})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
