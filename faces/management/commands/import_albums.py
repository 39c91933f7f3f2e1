"""manage.py import_albums: import albums from the website or a folder."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import InterfaceError, OperationalError

from faces.importer import ImportSummary, default_workers, run_import
from faces.services import concrexit_source
from faces.sources import SourceError
from faces.sources.folder import FolderSource


class Command(BaseCommand):
    help = (
        "Import photo albums from the association's website (THALIA_API_URL) or, with "
        "--folder, from the sub-folders of a folder; detect, encode and match their faces."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--folder", help="import every sub-folder of this folder as an album")
        parser.add_argument("--album", help="import only this album (slug, or folder name)")
        parser.add_argument(
            "--since", type=dt.date.fromisoformat, help="only albums dated on or after YYYY-MM-DD"
        )
        parser.add_argument(
            "--workers", type=int, default=None, help="encoding processes (default: one per core)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = default_workers() if options["workers"] is None else options["workers"]
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        try:
            source = FolderSource(options["folder"]) if options["folder"] else concrexit_source()
            summary = run_import(
                source,
                workers=workers,
                album_id=options["album"],
                since=options["since"],
                progress=self._progress(options["no_progress"]),
            )
        except SourceError as exc:
            raise CommandError(f"Import failed: {exc}") from exc
        except (OperationalError, InterfaceError) as exc:
            # The server restarted or the network dropped: what is stored is
            # consistent (one transaction per photo), the rest stays pending.
            reason = (str(exc).strip().splitlines() or ["no details"])[0]
            raise CommandError(
                f"Import stopped: lost the database connection ({exc.__class__.__name__}: {reason}). "
                "Photos not yet stored stay pending: run the command again to continue."
            ) from exc
        self._report(summary)

    def _progress(self, disabled: bool):  # type: ignore[no-untyped-def]
        if disabled or not sys.stdout.isatty():
            return None
        from tqdm import tqdm

        bar: dict[str, tqdm] = {}

        def update(done: int, total: int) -> None:
            if "bar" not in bar:
                bar["bar"] = tqdm(total=total, unit="photo", file=sys.stderr)
            bar["bar"].update(1)
            if done == total:
                bar.pop("bar").close()

        return update

    def _report(self, summary: ImportSummary) -> None:
        for error in summary.errors[:20]:
            self.stderr.write(f"  {error}")
        if len(summary.errors) > 20:
            self.stderr.write(f"  … and {len(summary.errors) - 20} more")
        self.stdout.write(summary.line())
