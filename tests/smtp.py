"""A real SMTP server on 127.0.0.1 for the mail tests: aiosmtpd, not a fake.

aiosmtpd implements the server side of RFC 5321 (EHLO/HELO, MAIL FROM, RCPT
TO, DATA with dot-unstuffing, RSET, NOOP, QUIT, and the 4xx/5xx replies),
so Django's smtplib client talks to it exactly as to a production server.
This module only adds what the tests need around it: the messages it
accepted, parsed, and a switch that makes it answer DATA with a temporary
failure, as a server with a full queue does (RFC 5321 §4.2.2, 451).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, content_type: str) -> str:
        """The text of the message's part of this type (text/plain, text/html), with \n line ends.

        (SMTP carries lines ending in CRLF, RFC 5321 §2.3.8.)
        """
        found = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert found is not None and found.get_content_type() == content_type, content_type
        text: str = found.get_content()
        return text.replace("\r\n", "\n")


@dataclass
class _Handler:
    """aiosmtpd's handler hook: called once per accepted DATA."""

    received: list[Received] = field(default_factory=list)
    refuse_data: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        if self.refuse_data:
            return "451 4.3.0 Mail queue full, try again later"
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on 127.0.0.1:port; `start()`/`stop()` may be repeated on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.handler = _Handler()
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def refuse_data(self, refuse: bool) -> None:
        self.handler.refuse_data = refuse

    def start(self) -> SmtpServer:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
