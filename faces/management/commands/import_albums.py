"""manage.py import_albums: import albums from the website or a folder."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from faces.importer import ImportSummary, default_workers, location_of, printable, run_import
from faces.models import ImportRun
from faces.services import concrexit_source, import_run_finish, import_run_start
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
        except SourceError as exc:
            raise CommandError(f"Import failed: {exc}") from exc
        # Import history for the admin: a row when the run starts, its summary
        # (or why it stopped) when it ends.
        run = import_run_start(source=source.kind, location=printable(location_of(source)))
        try:
            summary = run_import(
                source,
                workers=workers,
                album_id=options["album"],
                since=options["since"],
                progress=self._progress(options["no_progress"]),
            )
        except SourceError as exc:
            import_run_finish(run=run, summary=None, error=str(exc))
            raise CommandError(f"Import failed: {exc}") from exc
        except (OperationalError, InterfaceError) as exc:
            # The server restarted or the network dropped: what is stored is
            # consistent (one transaction per photo), the rest stays pending.
            reason = (str(exc).strip().splitlines() or ["no details"])[0]
            message = (
                f"Import stopped: lost the database connection ({exc.__class__.__name__}: {reason}). "
                "Photos not yet stored stay pending: run the command again to continue."
            )
            self._record_stop(run, message)
            raise CommandError(message) from exc
        except BaseException as exc:  # a bug or Ctrl-C: the run still gets its end
            import_run_finish(run=run, summary=None, error=f"stopped: {exc.__class__.__name__}: {exc}")
            raise
        import_run_finish(run=run, summary=summary)
        self._report(summary)

    def _record_stop(self, run: ImportRun, message: str) -> None:
        """Record why a run stopped, on a fresh connection; the server may still be gone."""
        connection.close()
        try:
            import_run_finish(run=run, summary=None, error=message)
        except DatabaseError:
            self.stderr.write("  (the import history could not record this stop either)")

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
