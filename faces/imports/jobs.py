"""The encoding jobs of claimed photos, for the importer's worker processes and for Celery tasks."""

from __future__ import annotations

from faces import services
from faces.imports.workers import EncodeJob
from faces.models import Photo
from faces.sources import Source
from faces.sources.folder import FolderSource
from thalia import services as website


def jobs_for(source: Source, photo_ids: list[int]) -> list[EncodeJob]:
    """Encoding jobs for photos of `source`: a folder photo's file, or how to download a
    website photo, its signed URLs refreshed first when stale."""
    photos = list(Photo.objects.filter(pk__in=photo_ids).select_related("album").order_by("id"))
    folder = source if isinstance(source, FolderSource) else None
    if folder is None:
        website.photo_urls_refresh(photos, source=source)
    options = services.engine_options()
    return [
        EncodeJob(
            photo_id=photo.pk,
            source_id=photo.source_id,
            path=str(folder.root / photo.origin) if folder is not None else "",
            fetch=None if folder is not None else website.photo_fetcher(photo, source=source),
            options=options,
        )
        for photo in photos
    ]
