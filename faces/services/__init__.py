"""State changes for albums, photos, faces and matches.

Import → encode → match are explicit calls: the importer syncs an album's
photo rows, workers encode, and `photo_store` writes one photo's faces and
their matches in one transaction.

The functions live in modules by concern and are all importable from here
(`from faces import services; services.photo_store(...)`):
`photos` (album sync, storing a photo's faces, photo files), `claims` (import
claims and batched stores), `matches` (selfie matches, "not me" and its undo),
`assignment` (one face, one person per photo; "Is this you?" offers),
`learning` (limits, mean and learned references, answers to "Is this you?") and
`history` (import runs). The website's signed URLs and a member's albums are
`thalia.services`.
"""

from __future__ import annotations

from faces.services.claims import (
    Outcome,
    Recorded,
    claim_token,
    claims_held,
    claims_recover,
    claims_release,
    owner_alive,
    photo_claim,
    photos_claim,
    photos_record,
)
from faces.services.history import (
    IMPORT_RUN_COUNTS,
    ImportSummaryLike,
    import_run_beat,
    import_run_finish,
    import_run_start,
    import_runs_by_owner,
    import_runs_close_interrupted,
)
from faces.services.learning import RefreshSummary, references_refresh, suggestion_answer
from faces.services.matches import matches_rebuild, photo_dismiss, photo_restore, reference_match
from faces.services.photos import (
    AlbumSync,
    album_sync,
    engine_options,
    photo_content_type,
    photo_store,
    photos_reencode,
)

__all__ = [
    "IMPORT_RUN_COUNTS",
    "AlbumSync",
    "ImportSummaryLike",
    "Outcome",
    "Recorded",
    "RefreshSummary",
    "album_sync",
    "claim_token",
    "claims_recover",
    "claims_held",
    "claims_release",
    "engine_options",
    "import_run_beat",
    "import_run_finish",
    "import_run_start",
    "import_runs_by_owner",
    "import_runs_close_interrupted",
    "matches_rebuild",
    "owner_alive",
    "photo_claim",
    "photo_content_type",
    "photo_dismiss",
    "photo_restore",
    "photo_store",
    "photos_claim",
    "photos_record",
    "photos_reencode",
    "reference_match",
    "references_refresh",
    "suggestion_answer",
]
