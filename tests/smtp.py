"""A recording SMTP server for tests, on aiosmtpd, with scripted replies per address."""

from __future__ import annotations

import asyncio
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    mail_options: list[str] = field(default_factory=list)  # e.g. ["SMTPUTF8"]

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    # address -> list of replies to give in turn for RCPT TO (e.g. ["451 try later", "250 OK"])
    scripted: dict[str, list[str]] = field(default_factory=dict)
    # replies to give in turn for MAIL FROM, and after the message content, then 250
    mail_replies: list[str] = field(default_factory=list)
    content_replies: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    data_delay: float = 0.0  # seconds to wait before accepting DATA: a slow server
    pipelining: bool = True  # advertise PIPELINING (RFC 2920), as Postfix and Exim do

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            reply = self.mail_replies.pop(0) if self.mail_replies else "250 OK"
        if reply.startswith("250"):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return reply

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
            if self.content_replies:
                return self.content_replies.pop(0)
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.content),
                    list(envelope.mail_options),
                )
            )
        return "250 Message accepted for delivery"


class RecordingSMTPServer:
    """Start with ``start()``; ``url`` is a MAIL_URL; ``received`` lists accepted messages.

    With ``smtputf8`` the server offers SMTPUTF8 (RFC 6531) and takes UTF-8 addresses;
    without it, like many servers still, it refuses them. ``pipelining`` offers RFC 2920
    PIPELINING, as Postfix and Exim do. As a context manager it starts and stops itself.
    """

    def __init__(self, *, smtputf8: bool = False, pipelining: bool = True) -> None:
        self.handler = _Handler(pipelining=pipelining)
        self.port = _free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=smtputf8
        )

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

    def script_mail(self, *replies: str) -> None:
        """Answer the next MAIL FROM commands with these replies in turn, then 250."""
        self.handler.mail_replies[:] = replies

    def script_content(self, *replies: str) -> None:
        """Answer the next messages' content (after DATA) with these replies, then 250."""
        self.handler.content_replies[:] = replies

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> RecordingSMTPServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StrictPipeliningServer:
    """An SMTP server that answers MAIL, RCPT and DATA only once all three have arrived.

    A client that waits for each reply before its next command (no RFC 2920 pipelining) gets
    ``554`` after a second instead of a delivery. Use as a context manager.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 strict ESMTP\r\n")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        self.wfile.write(b"250-strict\r\n250-PIPELINING\r\n250 SIZE 10000000\r\n")
                    elif verb == b"MAIL":
                        self._transaction(line)
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 OK\r\n")

            def _transaction(self, mail: bytes) -> None:
                group = [mail]
                self.connection.settimeout(1.0)
                try:
                    while not group[-1].upper().startswith(b"DATA"):
                        group.append(self.rfile.readline())
                except TimeoutError:
                    self.wfile.write(b"554 5.5.0 expected MAIL, RCPT and DATA together\r\n")
                    return
                finally:
                    self.connection.settimeout(None)
                self.wfile.write(b"250 OK\r\n" * (len(group) - 1) + b"354 go ahead\r\n")
                lines = []
                while (line := self.rfile.readline()) != b".\r\n":
                    lines.append(line[1:] if line.startswith(b"..") else line)
                server.received.append(
                    Received(
                        _address(group[0]),
                        [_address(rcpt) for rcpt in group[1:-1]],
                        b"".join(lines),
                    )
                )
                self.wfile.write(b"250 queued\r\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]

    def __enter__(self) -> StrictPipeliningServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _address(command: bytes) -> str:
    return command.split(b"<", 1)[1].split(b">", 1)[0].decode()


@contextmanager
def postfix_smtp_sink() -> Iterator[tuple[int, Callable[[], list[Received]]]]:
    """Run Postfix's smtp-sink on a free port, dumping each message into a folder of its own.

    Yields the port and a function that reads the dumps back: smtp-sink writes its own
    ``X-Mail-Args``/``X-Rcpt-Args`` headers in front of the message, with LF line ends.
    """
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    dumps = Path(tempfile.mkdtemp(prefix="smtp-sink-"))  # not under pytest's 0700 folders
    dumps.chmod(0o1777)  # smtp-sink writes as nobody
    port = _free_port()
    process = subprocess.Popen(
        [sink, "-u", "nobody", "-d", f"{dumps}/%M.", f"127.0.0.1:{port}", "100"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def read() -> list[Received]:
        result = []
        for path in sorted(dumps.rglob("*")):
            data = path.read_bytes()
            head = BytesParser(policy=policy.default).parsebytes(data, headersonly=True)
            result.append(
                Received(
                    _address(head["X-Mail-Args"].encode()),
                    [_address(a.encode()) for a in head.get_all("X-Rcpt-Args", [])],
                    data,
                )
            )
        return result

    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("smtp-sink did not start (apt-get install postfix)") from exc
                time.sleep(0.05)
        yield port, read
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(dumps, ignore_errors=True)
