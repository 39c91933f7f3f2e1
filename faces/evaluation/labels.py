"""Labelled folders in the format of ../shared/faces: a labels.csv per folder."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

# Group stills of enrolled characters whose faces are not labelled one by one.
UNSCORED_GROUP_FOLDERS = frozenset({"bbt_faces"})
KINDS = frozenset({"single", "distractor", "group", "noface"})


class EvaluationError(Exception):
    """The labelled folders cannot be read, or the evaluation cannot run here."""


@dataclass(frozen=True)
class LabelledImage:
    folder: str
    file: str
    path: Path
    identities: frozenset[str]
    kind: str
    faces_expected: int | None

    @property
    def source_id(self) -> str:
        """The Photo.source_id a folder import gives it: "<album>/<flattened file>"."""
        return f"{self.folder}/{self.file.replace('/', '__')}"

    @property
    def scored(self) -> bool:
        return not (self.folder in UNSCORED_GROUP_FOLDERS and self.kind == "group")


def read_labels(folders: list[Path]) -> list[LabelledImage]:
    """Every labelled image of the folders; raises EvaluationError on a bad folder."""
    images: list[LabelledImage] = []
    names = [folder.name for folder in folders]
    if len(set(names)) != len(names):
        raise EvaluationError("two folders have the same name; each becomes an album named after it")
    for folder in folders:
        labels = folder / "labels.csv"
        if not labels.is_file():
            raise EvaluationError(f"{labels} not found: not a labelled folder")
        with labels.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                images.append(_labelled_image(folder, labels, line, row))
    seen: set[str] = set()
    for image in images:
        if image.source_id in seen:
            raise EvaluationError(f"{image.folder}: two images flatten to {image.source_id}")
        seen.add(image.source_id)
    return images


def _labelled_image(folder: Path, labels: Path, line: int, row: dict[str, str]) -> LabelledImage:
    where = f"{labels}, line {line}"
    file, kind = (row.get("file") or "").strip(), (row.get("kind") or "").strip()
    if not file or kind not in KINDS:
        raise EvaluationError(f"{where}: needs a file and a kind ({', '.join(sorted(KINDS))})")
    path = folder / file
    if not path.is_file():
        raise EvaluationError(f"{where}: {path} not found")
    expected = (row.get("faces_expected") or "").strip()
    if expected and not expected.isdigit():
        raise EvaluationError(f"{where}: faces_expected {expected!r} is not a number")
    return LabelledImage(
        folder=folder.name,
        file=file,
        path=path,
        identities=frozenset(filter(None, (row.get("identities") or "").split(";"))),
        kind=kind,
        faces_expected=int(expected) if expected else None,
    )
