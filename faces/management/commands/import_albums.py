"""manage.py import_albums: import albums from the website or a folder."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from faces.imports.importer import DEFAULT_WAIT_S, default_workers, printable, run_import
from faces.imports.summary import ImportSummary
from faces.models import Album, ImportRun
from faces.services import import_run_finish, import_run_start
from faces.services.claims import first_line
from faces.sources import Source, SourceError
from faces.sources.folder import FolderSource
from thalia.services import website_location, website_source


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
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help="with CELERY_BROKER_URL: queue the photos and return without waiting for the workers",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_WAIT_S,
            help="with CELERY_BROKER_URL: stop waiting when no photo has finished for this many seconds "
            f"(default {DEFAULT_WAIT_S:.0f})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workers = default_workers() if options["workers"] is None else options["workers"]
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        if options["timeout"] <= 0:
            raise CommandError("--timeout must be more than 0 seconds")
        # Import history for the admin: a row when the run starts, its summary
        # (or why it stopped) when it ends, also when the source cannot even
        # be opened (a bad folder; the website down or refusing to renew
        # Throwback's token).
        folder = options["folder"]
        run = import_run_start(
            source=Album.Source.FOLDER if folder else Album.Source.CONCREXIT,
            location=printable(str(FolderSource.resolve(folder))) if folder else website_location(),
        )
        progress = self._progress(options["no_progress"])
        try:
            source: Source = FolderSource(folder) if folder else website_source()
            summary = run_import(
                source,
                workers=workers,
                album_id=options["album"],
                since=options["since"],
                progress=progress,
                wait_s=None if options["no_wait"] else options["timeout"],
            )
        except SourceError as exc:
            import_run_finish(run=run, summary=None, error=str(exc))
            raise CommandError(f"Import failed: {exc}") from exc
        except (OperationalError, InterfaceError) as exc:
            # The server restarted or the network dropped: what is stored is
            # consistent (one transaction per batch), the rest stays pending.
            cause = _first_database_error(exc)
            message = (
                f"Import stopped: lost the database connection ({cause.__class__.__name__}: {first_line(cause)}). "
                "Photos not yet stored stay pending: run the command again to continue."
            )
            if not self._record_stop(run, message):
                message += (
                    " (The import history could not record this stop: the next run marks it interrupted.)"
                )
            raise CommandError(message) from None  # one line: the cause is in it
        except BaseException as exc:  # a bug or Ctrl-C: the run still gets its end
            import_run_finish(run=run, summary=None, error=f"stopped: {exc.__class__.__name__}: {exc}")
            raise
        finally:
            if progress is not None:
                progress.close()
        import_run_finish(run=run, summary=summary)
        self._report(summary)

    def _record_stop(self, run: ImportRun, message: str) -> bool:
        """Record why a run stopped, on a fresh connection; False when the server is still gone."""
        connection.close()
        try:
            import_run_finish(run=run, summary=None, error=message)
        except DatabaseError:
            return False
        return True

    def _progress(self, disabled: bool) -> _Bar | None:
        if disabled or not sys.stdout.isatty():
            return None
        return _Bar()

    def _report(self, summary: ImportSummary) -> None:
        for error in summary.errors[:20]:
            self.stderr.write(f"  {error}")
        if len(summary.errors) > 20:
            self.stderr.write(f"  … and {len(summary.errors) - 20} more")
        self.stdout.write(summary.line())


def _first_database_error(exc: BaseException) -> BaseException:
    """The database error that began a chain (later ones only say "connection already closed")."""
    while isinstance(exc.__context__, DatabaseError):
        exc = exc.__context__
    return exc


class _Bar:
    """A tqdm bar on stderr, made at the first update (when the total is known)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="photo", file=sys.stderr)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
