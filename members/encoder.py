"""The long-lived selfie encoder: `manage.py run_encoder` runs `Encoder.run()`.

It loads dlib's models once (faces.engine.warm_up) and then, until stopped,
hands back uploads of encoders that died (selfies.selfie_uploads_recover),
claims the next queued upload and analyses it, renewing its claim from a
second thread while dlib works. gunicorn.conf.py starts one (or
THROWBACK_ENCODERS) beside the web workers and restarts it when it dies.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from faces import engine
from faces.services.claims import claim_token
from members import selfies

logger = logging.getLogger(__name__)

RECOVER_EVERY_S = 2.0
DATABASE_RETRY_S = 5.0


class _Heartbeat:
    """Renews one claim every third of the lease while the block runs (its own DB connection)."""

    def __init__(self, upload_id: int, owner: str) -> None:
        self.upload_id, self.owner = upload_id, owner
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{upload_id}", daemon=True)

    def _beat(self) -> None:
        try:
            while not self.stop.wait(settings.THROWBACK_ENCODER_LEASE_SECONDS / 3):
                try:
                    selfies.selfie_upload_beat(upload_id=self.upload_id, owner=self.owner)
                except DatabaseError:
                    logger.warning("could not renew the claim on selfie upload %s", self.upload_id)
        finally:
            connection.close()

    def __enter__(self) -> None:
        self.thread.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self.thread.join()


class Encoder:
    """One encoder process's loop; `stop` (set by SIGTERM/SIGINT) ends it after the current upload."""

    def __init__(self, *, stop: threading.Event | None = None, parent_pid: int | None = None) -> None:
        self.owner = claim_token()
        self.stop = stop or threading.Event()
        self.parent_pid = parent_pid
        self.analysed = 0

    def _orphaned(self) -> bool:
        """Whether the process that started this encoder (gunicorn's master) is gone."""
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    def run(self, *, until_idle: bool = False, ready: Callable[[], None] | None = None) -> int:
        """Analyse uploads until stopped (or, `until_idle`, until none is queued); returns how many.

        `ready` is called once dlib's models are loaded. A lost database
        connection is logged and retried, so the encoder outlives a database
        restart.
        """
        engine.warm_up()
        if ready is not None:
            ready()
        last_recover = 0.0
        while not self.stop.is_set():
            if self._orphaned():
                logger.warning(
                    "selfie encoder %s: its parent %s is gone; stopping", self.owner, self.parent_pid
                )
                break
            try:
                if time.monotonic() - last_recover >= RECOVER_EVERY_S:
                    selfies.selfie_uploads_recover()
                    selfies.selfie_uploads_expire()
                    last_recover = time.monotonic()
                upload = selfies.selfie_upload_claim(owner=self.owner)
                if upload is None:
                    if until_idle:
                        break
                    self.stop.wait(settings.THROWBACK_ENCODER_POLL_SECONDS)
                    continue
                with _Heartbeat(upload.pk, self.owner):
                    finished = selfies.selfie_upload_analyse(upload=upload, encode_in="encoder")
                self.analysed += 1
                logger.info("selfie upload %s: %s %s", upload.pk, finished.state, finished.code)
            except DatabaseError:
                logger.exception("selfie encoder: database error; trying again in %s s", DATABASE_RETRY_S)
                close_old_connections()
                connection.close()
                self.stop.wait(DATABASE_RETRY_S)
        return self.analysed
