"""Real dlib encodings of the labelled photos, computed once and cached.

The match benchmark fits its synthetic faces to these. Every image labelled
`single` or `distractor` in ../shared/faces is encoded with the product's
engine (default options, so the default encode size); images where exactly one
face is found are kept with their identity label. The result is cached as an
.npz file under THROWBACK_BENCH_CACHE (default /tmp/throwback-bench-cache),
keyed by the list of files, so later runs skip the two minutes of encoding.

    .venv/bin/python bench/real_encodings.py     # encode (or load) and print statistics
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
from pathlib import Path

import numpy as np
from common import REPO, out  # noqa: E402 - bench/ is on sys.path

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
CACHE_DIR = Path(os.environ.get("THROWBACK_BENCH_CACHE", "/tmp/throwback-bench-cache"))  # noqa: S108


def labelled_files() -> list[tuple[Path, str]]:
    """(path, identity) of every single-person image under FACES_DIR, in a stable order."""
    files = []
    for labels in sorted(FACES_DIR.glob("*/labels.csv")):
        with labels.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["kind"] in ("single", "distractor") and ";" not in row["identities"]:
                    files.append((labels.parent / row["file"], f"{labels.parent.name}/{row['identities']}"))
    return files


def load() -> tuple[np.ndarray, np.ndarray]:
    """(encodings float32 n×128, identity labels n) of the labelled photos with one face."""
    files = labelled_files()
    key = hashlib.sha256("\n".join(f"{p}|{i}" for p, i in files).encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"encodings-{key}.npz"
    if cache.is_file():
        data = np.load(cache)
        return data["encodings"], data["labels"]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from faces import engine

    encodings, labels = [], []
    for path, identity in files:
        try:
            faces = engine.analyse(path.read_bytes()).faces
        except engine.EngineError:
            continue
        if len(faces) == 1:
            encodings.append(faces[0].encoding)
            labels.append(identity)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    result = np.asarray(encodings, dtype=np.float32), np.asarray(labels)
    np.savez(cache, encodings=result[0], labels=result[1])
    return result


def pair_distances(encodings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances of all same-identity pairs and all different-identity pairs."""
    diff = encodings[:, None, :] - encodings[None, :, :]
    distances = np.sqrt((diff * diff).sum(-1))
    upper = np.triu(np.ones(distances.shape, dtype=bool), k=1)
    same = labels[:, None] == labels[None, :]
    return distances[upper & same], distances[upper & ~same]


if __name__ == "__main__":
    enc, lab = load()
    same, different = pair_distances(enc, lab)
    out(f"{len(enc)} faces of {len(set(lab.tolist()))} identities")
    out(f"same person: mean {same.mean():.3f} sd {same.std():.3f} ({len(same)} pairs)")
    out(f"different:   mean {different.mean():.3f} sd {different.std():.3f} ({len(different)} pairs)")
