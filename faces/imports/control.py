"""What an import run knows about itself: who it is, how long it may take, that it still lives.

`import_albums` makes a `RunControl` per run and hands it to `run_import`:

- `token`: the run's owner name, "host:pid:random" (`services.claim_token`);
  its photo claims and its ImportRun row (`owner`) carry it, so a summary can
  name the run that holds photos and the next run can tell whether it lives.
- `check()`, called by the importer between steps (an album, a batch, a
  poll): raises `OutOfTime` once the run's deadline has passed, and beats the
  run's heartbeat (ImportRun.heartbeat) at most every BEAT_S.

`RunStopped` (and `OutOfTime`, `Interrupted`) are BaseExceptions, like
KeyboardInterrupt: code that catches Exception to keep a run going (an
album's error, a photo's) does not swallow a stop. The importer attaches
the summary so far, which the command records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faces.imports.summary import ImportSummary

# How often a running import tells the database it still lives.
BEAT_S = 60.0


class RunStopped(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error of the run's work
    """The run stopped early and cleanly; the message says why, `summary` holds what it did."""

    summary: ImportSummary | None = None


class OutOfTime(RunStopped):
    """The run's deadline (THROWBACK_IMPORT_DEADLINE_SECONDS) passed."""


class Interrupted(RunStopped):
    """A signal asked the run to stop (SIGTERM from docker stop or systemd, SIGINT from Ctrl-C)."""

    def __init__(self, signal_name: str, exit_status: int) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_status = exit_status


class RunControl:
    def __init__(
        self,
        *,
        token: str,
        deadline_s: float | None = None,
        beat: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`deadline_s`: seconds from now the run may take (None: no limit);
        `beat`: records that the run lives (called by `check()` every BEAT_S)."""
        self.token = token
        self.deadline_s = deadline_s
        self._beat = beat
        self._clock = clock
        self._ends_at = None if deadline_s is None else clock() + deadline_s
        self._beat_at = clock() + BEAT_S

    def check(self) -> None:
        """Between two steps of the run: stop when out of time, else beat when due."""
        now = self._clock()
        if self._ends_at is not None and now >= self._ends_at:
            assert self.deadline_s is not None  # noqa: S101 - set together with _ends_at
            raise OutOfTime(
                f"stopped after {_duration(self.deadline_s)}, the run's limit (THROWBACK_IMPORT_DEADLINE_SECONDS); "
                "photos not yet stored stay pending for the next run"
            )
        if self._beat is not None and now >= self._beat_at:
            self._beat()
            self._beat_at = now + BEAT_S

    def wait_s(self) -> float:
        """How long the run may wait for something before it must `check()` again."""
        now = self._clock()
        until = self._beat_at - now
        if self._ends_at is not None:
            until = min(until, self._ends_at - now)
        return max(0.0, until)


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
