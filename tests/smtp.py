"""A recording SMTP server for tests, on aiosmtpd, with scripted replies per address."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    # address -> list of replies to give in turn for RCPT TO (e.g. ["451 try later", "250 OK"])
    scripted: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    data_delay: float = 0.0  # seconds to wait before accepting DATA: a slow server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            replies = self.scripted.get(address.lower())
            reply = replies.pop(0) if replies else "250 OK"
        if not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 Message accepted for delivery"


class RecordingSMTPServer:
    """Start with ``start()``; ``url`` is a MAIL_URL; ``received`` lists accepted messages."""

    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = _free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def script(self, address: str, *replies: str) -> None:
        """Answer RCPT TO for ``address`` with these replies in turn, then 250."""
        self.handler.scripted[address.lower()] = list(replies)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
