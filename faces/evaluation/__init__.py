"""Accuracy on labelled photo folders, measured through the product's own code.

Follows the protocol of ../shared/faces/README.md ("find me in the event
photos") for folders in its format (a `labels.csv` with `file`,
`identities`, `kind`, `faces_expected`):

1. Every person with two or more `single` images becomes a member, gives
   consent and enrols their first `references` usable images (labels.csv
   order) with `members.services.reference_add`, the selfie upload service;
   an image it refuses (no face, several faces) is counted and the next one
   tried. `distractor` images and `unknown` faces are never enrolled.
2. Every labelled image (`file`; LFW's `alt_file` twins are the same photos
   and are left out) is imported as an event photo with
   `faces.imports.importer.run_import` from a `FolderSource`: one album per folder,
   made of symbolic links in a temporary directory, never copies.
3. The import stores `Match` rows at the largest threshold evaluated; each
   smaller threshold is a cut of the stored `Match.distance` (a match at
   threshold t is exactly a stored match with distance ≤ t).
4. A member's photos are their stored matches, minus their own enrolled
   images. A hit is a photo whose `identities` contain the person, a false
   match one whose `identities` do not. Group stills of `bbt_faces` (enrolled
   characters, faces not labelled individually) are left out of scoring.

Everything happens in a throw-away database (Django's test-database
machinery: a new database next to the real one, dropped afterwards; an
in-memory one on SQLite) and a temporary MEDIA_ROOT, so the real database
and media are never read or written. Engine options are applied as settings
overrides, so the import and the selfie service run exactly as configured.
"""

from faces.evaluation.labels import EvaluationError, LabelledImage, read_labels
from faces.evaluation.report import Report, Score, format_report
from faces.evaluation.run import ENGINE_SETTINGS, evaluate, throwaway_database

__all__ = [
    "ENGINE_SETTINGS",
    "EvaluationError",
    "LabelledImage",
    "Report",
    "Score",
    "evaluate",
    "format_report",
    "read_labels",
    "throwaway_database",
]
