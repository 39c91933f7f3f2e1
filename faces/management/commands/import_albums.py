"""manage.py import_albums: import albums from the website or a folder."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from faces import services
from faces.imports.control import Interrupted, RunControl, RunStopped
from faces.imports.importer import DEFAULT_WAIT_S, default_workers, printable, run_import
from faces.imports.summary import ImportSummary
from faces.models import Album, ImportRun
from faces.services import import_run_finish, import_run_start
from faces.services.claims import first_line
from faces.sources import Source, SourceError
from faces.sources.folder import FolderSource
from members.notifications import digests_send
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
        parser.add_argument(
            "--allow-missing",
            action="store_true",
            help="let this run mark any number of albums missing (all of them, when the source really "
            "lists none); without it a run that would hide more than THROWBACK_IMPORT_MAX_MISSING_SHARE "
            "of a source's albums refuses",
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
        token = services.claim_token()  # on the run's row and on every photo it claims
        run = import_run_start(
            source=Album.Source.FOLDER if folder else Album.Source.CONCREXIT,
            location=printable(str(FolderSource.resolve(folder))) if folder else website_location(),
            owner=token,
        )
        for dead in services.import_runs_close_interrupted(by=run):
            self.stderr.write(f"  run {dead.pk} (started {dead.started:%Y-%m-%d %H:%M}) was {dead.error}")
        control = RunControl(
            token=token,
            deadline_s=settings.THROWBACK_IMPORT_DEADLINE_SECONDS or None,
            beat=functools.partial(services.import_run_beat, run=run),
        )
        progress = self._progress(options["no_progress"])
        with _Signals() as signals:
            summary = self._run(run, control, signals, progress, workers=workers, options=options)
            import_run_finish(run=run, summary=summary)
            self._report(summary)
            # Last, once everything is stored: a slow or dead mail server cannot fail the import.
            digests = digests_send()
            if digests.considered:
                self.stdout.write(digests.line())

    def _run(
        self,
        run: ImportRun,
        control: RunControl,
        signals: _Signals,
        progress: _Bar | None,
        *,
        workers: int,
        options: dict[str, Any],
    ) -> ImportSummary:
        """The import; every way it can stop is recorded in `run` and becomes a one-line CommandError."""
        folder = options["folder"]
        try:
            with signals.stopping_the_run():
                source: Source = FolderSource(folder) if folder else website_source()
                return run_import(
                    source,
                    workers=workers,
                    album_id=options["album"],
                    since=options["since"],
                    progress=progress,
                    wait_s=None if options["no_wait"] else options["timeout"],
                    control=control,
                    allow_missing=options["allow_missing"],
                )
        except RunStopped as stop:
            # Out of time, or SIGTERM/SIGINT: the claims are handed back; record what was done and why.
            message = f"stopped by {stop.signal_name}" if isinstance(stop, Interrupted) else str(stop)
            if isinstance(stop, Interrupted):
                message += "; photos not yet stored stay pending for the next run"
            import_run_finish(run=run, summary=stop.summary, error=message)
            if stop.summary is not None:
                self._report(stop.summary)
            status = stop.exit_status if isinstance(stop, Interrupted) else 1
            raise CommandError(f"Import {message}.", returncode=status) from None
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
        except BaseException as exc:  # a bug: the run still gets its end
            import_run_finish(run=run, summary=None, error=f"stopped: {exc.__class__.__name__}: {exc}")
            raise
        finally:
            if progress is not None:
                progress.close()

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


class _Signals:
    """SIGTERM (docker stop, systemd) and SIGINT (Ctrl-C) stop the run cleanly, with `Interrupted`.

    The exception is raised only while the run works (`stopping_the_run`),
    and only once: a signal while the run hands its photos back and records
    the stop, or after it ended, is ignored (the command ends by itself).
    Handlers are set only in the main thread (where Python delivers
    signals); in another thread (a test's) nothing changes.
    """

    def __init__(self) -> None:
        self.received = ""
        self._live = False
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @contextlib.contextmanager
    def stopping_the_run(self) -> Iterator[None]:
        self._live = True
        try:
            yield
        finally:
            self._live = False

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return
        self.received = signal.Signals(signum).name
        if self._live:
            self._live = False
            raise Interrupted(self.received, 128 + signum)


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
