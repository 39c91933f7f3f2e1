"""CPU cost per photo of each engine option, on event-photo-sized labelled images.

Runs `faces.engine.analyse` (decode, downscale, detect, encode: what an import
worker does per photo) in this one process and measures CPU time with
`time.process_time`, so the figures hold on a machine shared with other work
(wall-clock time would not). Each option is changed alone from the baseline
(500 px, upsample 1, HOG, 1 jitter, small landmarks: the original defaults),
plus a few combinations.

The images are the labelled photos larger than 300 px of
../shared/faces/face_recognition_examples and the group stills of bbt_faces
(320 to 2,333 px, 1 to 7 faces): the dev set's other images are 150 to 380 px
face crops, far smaller than event photos. The CNN detector is measured on
the first --cnn-images of them only, it takes seconds per photo.

    .venv/bin/python bench/engine_cost.py
    .venv/bin/python bench/engine_cost.py --repeat 2 --cnn-images 4
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import REPO, out, table  # noqa: E402 - bench/ is on sys.path

sys.path.insert(0, str(REPO))

from faces import engine  # noqa: E402

FACES_DIR = Path(os.environ.get("THROWBACK_FACES_DIR", REPO.parent / "shared" / "faces"))
MIN_SIDE_PX = 300
ORIGINAL_PX = 100_000  # larger than any photo: no downscaling


def sample() -> list[tuple[str, bytes]]:
    from PIL import Image

    images = []
    for folder in ("face_recognition_examples", "bbt_faces"):
        with (FACES_DIR / folder / "labels.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                path = FACES_DIR / folder / row["file"]
                with Image.open(path) as image:
                    if max(image.size) > MIN_SIDE_PX:
                        images.append((f"{folder}/{row['file']}", path.read_bytes()))
    return images


def cost(images: list[tuple[str, bytes]], options: engine.EngineOptions, repeat: int) -> tuple[float, int]:
    """(CPU ms per photo, faces found per pass)."""
    faces = 0
    started = time.process_time()
    for _ in range(repeat):
        faces = sum(len(engine.analyse(data, options).faces) for _, data in images)
    return 1000 * (time.process_time() - started) / (repeat * len(images)), faces


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="passes over the images per option")
    parser.add_argument("--cnn-images", type=int, default=3, help="images the CNN detector is timed on")
    args = parser.parse_args()

    images = sample()
    base = engine.EngineOptions()
    engine.warm_up()
    engine.analyse(images[0][1], base)  # first call pays dlib's lazy set-up
    out(f"{len(images)} images from {FACES_DIR} (longest side > {MIN_SIDE_PX} px), CPU time of one process")
    variants: list[tuple[str, engine.EngineOptions, list[tuple[str, bytes]]]] = [
        ("baseline: 500 px, upsample 1, hog, 1 jitter, small", base, images)
    ]
    for side in (750, 1000, 1500, 2000, ORIGINAL_PX):
        label = "original size" if side == ORIGINAL_PX else f"{side} px"
        variants.append((label, replace(base, max_side_px=side), images))
    for up in (0, 2):
        variants.append((f"upsample {up}", replace(base, upsample=up), images))
    for side, up in ((1000, 0), (1500, 0)):
        variants.append((f"{side} px, upsample {up}", replace(base, max_side_px=side, upsample=up), images))
    for jitters in (5, 10):
        variants.append((f"{jitters} jitters", replace(base, jitters=jitters), images))
    variants.append(("large landmarks", replace(base, landmarks="large"), images))
    few = images[: args.cnn_images]
    variants.append((f"hog, on the {len(few)} CNN images", base, few))
    variants.append((f"cnn, on the {len(few)} CNN images", replace(base, detector="cnn"), few))

    rows = []
    base_ms = None
    for label, options, subset in variants:
        ms, faces = cost(subset, options, args.repeat)
        base_ms = base_ms or ms
        hours = ms * 10_000 / 2 / 3_600_000  # 10,000 photos on two cores
        rows.append([label, len(subset), faces, f"{ms:.0f}", f"{ms / base_ms:.2f}", f"{hours:.2f}"])
        out(f"  {label}: {ms:.0f} ms")
    out()
    table(["option", "photos", "faces", "CPU ms/photo", "× baseline", "h per 10,000 photos, 2 cores"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
