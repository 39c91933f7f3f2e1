"""manage.py run_encoder: the long-lived selfie encoder (members/encoder.py).

gunicorn.conf.py starts it beside the web workers; run it yourself when the
web server runs elsewhere (THROWBACK_ENCODERS=0 there), e.g. as its own
container or systemd service, one or more per host.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from members.encoder import Encoder


class Command(BaseCommand):
    help = (
        "Analyse queued selfie uploads with dlib's models kept loaded, until stopped "
        "(SIGTERM or Ctrl-C finish the current upload first)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="Stop once no upload is waiting (for scripts and cron), instead of waiting for more.",
        )
        parser.add_argument(
            "--parent-pid",
            type=int,
            default=None,
            help="Stop when this process (gunicorn's master, which passes it) is no longer the parent.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        encoder = Encoder(stop=stop, parent_pid=options["parent_pid"])
        analysed = encoder.run(
            until_idle=options["until_idle"],
            ready=lambda: self.stdout.write(f"Selfie encoder {encoder.owner} ready", ending="\n"),
        )
        self.stdout.write(f"Analysed {analysed} selfie uploads")
