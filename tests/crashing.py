"""An encode function for worker processes that dies on one photo, as a dlib crash would.

Module-level so that spawned workers can import it (run_import(encode=…)).
"""

from __future__ import annotations

import os
import signal

from faces.imports.workers import EncodeJob, EncodeResult, encode_job

POISON_NAME = "poison.jpg"


def encode_or_die_on_poison(job: EncodeJob) -> EncodeResult:
    """Encode normally, but kill this worker process on a file named poison.jpg."""
    if job.source_id.endswith(POISON_NAME):
        os.kill(os.getpid(), signal.SIGKILL)
    return encode_job(job)
