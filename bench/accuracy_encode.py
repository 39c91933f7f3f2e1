"""Encode every labelled image once, as an import and as a selfie, for bench/accuracy_sim.py.

Every labelled image of ../shared/faces (`file`, not LFW's `alt_file` twins)
is encoded the way an import encodes a photo (`faces.services.engine_options()`
through `engine.analyse`), and every `single` image of a person with two or
more of them also the way `members.services.reference_add` encodes a selfie
(downscaled to its stored size, then `engine_options(selfie=True)`). A selfie
in which the default detector finds no face is tried again with more
upsampling and with the CNN detector, so the simulation can measure "try
harder on this one image". Each face keeps its box, so the simulation can
pick a dominant face and judge its size.

The result is one pickle under THROWBACK_BENCH_CACHE (default
/tmp/throwback-bench-cache), keyed by the engine options and the file list:

    nice .venv/bin/python bench/accuracy_encode.py     # about 10 CPU-minutes, one process
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO, out  # noqa: E402 - bench/ is on sys.path

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
CACHE_DIR = Path(os.environ.get("THROWBACK_BENCH_CACHE", "/tmp/throwback-bench-cache"))  # noqa: S108


@dataclass
class Face:
    box: tuple[int, int, int, int]  # top, right, bottom, left in the encoded image's pixels
    encoding: np.ndarray


@dataclass
class Image:
    """One labelled image: its labels and its faces as an event photo (and as a selfie)."""

    folder: str
    file: str
    identities: frozenset[str]
    kind: str
    width: int = 0
    height: int = 0
    faces: list[Face] = field(default_factory=list)
    # As a selfie (single images of people with two or more): the default
    # detection, then (only when it finds nothing) upsample 2, then CNN.
    selfie: list[Face] | None = None
    selfie_size: tuple[int, int] = (0, 0)
    selfie_up2: list[Face] | None = None
    selfie_cnn: list[Face] | None = None

    @property
    def source_id(self) -> str:
        return f"{self.folder}/{self.file.replace('/', '__')}"


def _setup() -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "throwback.settings")
    import django

    django.setup()


def labelled_images() -> list[Image]:
    sys.path.insert(0, str(REPO))
    from faces.evaluation.labels import read_labels

    folders = sorted(p.parent for p in FACES_DIR.glob("*/labels.csv"))
    return [
        Image(folder=i.folder, file=i.file, identities=i.identities, kind=i.kind)
        for i in read_labels(folders)
    ]


def _faces(found: list[Any]) -> list[Face]:
    return [Face((f.top, f.right, f.bottom, f.left), np.asarray(f.encoding, dtype=np.float32)) for f in found]


def cache_path() -> Path:
    _setup()
    from faces.services import engine_options

    images = labelled_images()
    # What changes encodings: the options (not `pose`, which only measures the turn), the files.
    options = [
        {k: v for k, v in asdict(o).items() if k != "pose"}
        for o in (engine_options(), engine_options(selfie=True))
    ]
    key = repr((options, [i.source_id for i in images], 2))
    return CACHE_DIR / f"accuracy-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pickle"


def load() -> list[Image]:
    """The encoded images, from the cache (encoding them first when it is missing)."""
    path = cache_path()
    if path.is_file():
        with path.open("rb") as handle:
            images: list[Image] = _Unpickler(handle).load()
            return images
    images = encode_all()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(images, handle)
    return images


class _Unpickler(pickle.Unpickler):
    """Reads our own cache file (never anyone else's): classes pickled by `python bench/accuracy_encode.py` are
    `__main__`'s, found here in this module whichever script loads them."""

    def find_class(self, module: str, name: str) -> type:
        if module == "__main__":
            return globals()[name]  # type: ignore[no-any-return]
        return super().find_class(module, name)  # type: ignore[no-any-return]


def encode_all() -> list[Image]:
    _setup()
    from faces import engine
    from faces.services import engine_options
    from members.services import SELFIE_STORED_MAX_SIDE_PX

    event, selfie = engine_options(), engine_options(selfie=True)
    images = labelled_images()
    singles: dict[str, int] = {}
    for image in images:
        if image.kind == "single":
            for name in image.identities - {"unknown"}:
                singles[name] = singles.get(name, 0) + 1
    started = time.process_time()
    for n, image in enumerate(images, 1):
        data = (FACES_DIR / image.folder / image.file).read_bytes()
        analysis = engine.analyse(data, event)
        image.width, image.height = analysis.width, analysis.height
        image.faces = _faces(analysis.faces)
        if image.kind == "single" and any(singles.get(name, 0) >= 2 for name in image.identities):
            stored, _ = engine.downscale(
                engine.load_image(data, max_pixels=selfie.max_pixels), SELFIE_STORED_MAX_SIDE_PX
            )
            image.selfie_size = stored.size
            found = engine.find_faces(stored, selfie)
            image.selfie = _faces(found)
            if not found:
                image.selfie_up2 = _faces(engine.find_faces(stored, replace(selfie, upsample=2)))
                image.selfie_cnn = _faces(engine.find_faces(stored, replace(selfie, detector="cnn")))
        if n % 50 == 0:
            out(f"{n}/{len(images)} images, {time.process_time() - started:.0f} s CPU")
    return images


if __name__ == "__main__":
    loaded = load()
    out(f"{len(loaded)} images, {sum(len(i.faces) for i in loaded)} faces; cache {cache_path()}")
