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

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        analysed = Encoder(stop=stop).run(until_idle=options["until_idle"])
        self.stdout.write(f"Analysed {analysed} selfie uploads")
