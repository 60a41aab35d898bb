"""``prefsvc inbound serve``: an LMTP server (RFC 2033) for mail to ``BOUNCE_DOMAIN``.

It sits behind the MTA's transport map (Postfix: ``bounces.example.org lmtp:inet:HOST:PORT``)
and answers the DATA of each message once per accepted recipient, as LMTP requires: each
recipient is one VERP address naming one delivery, and one of them may fail while the others
are kept. Each message is first read by ``Read`` (the CLI's classifies it: CPU work, no
database) in the event loop as it arrives; the keeping is done by ``Deliver`` (the CLI's opens
an app context and calls ``intake.take_all``) in a worker thread, off the event loop, and a
failure there answers 451 so the MTA keeps the message and tries again.

Group commit: the worker thread takes every message waiting (up to ``threads``) and hands them
over together, to be kept in one transaction; each reply goes only after that transaction has
committed, so a reply of 250 always means kept, and a process that dies before replying loses
nothing (the MTA sends again; the digest makes it count once). While one group waits on the
database, the next one arrives and is classified. A commit per report cost more than the
report's classification.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import re
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, syntax

from prefsvc.inbound.verp import PURPOSES

log = logging.getLogger(__name__)

# Read one message for one recipient (raw, recipient) before it is taken: CPU work only.
Read = Callable[[bytes, str], Any]
# Take messages read, in one transaction; return for each a short outcome for its reply, or
# the exception that kept it from being taken (it is answered 451).
Deliver = Callable[[Sequence[Any]], list["str | Exception"]]
MAX_MESSAGE = 10 << 20  # returned originals may be large; the classifier reads the first 1 MB
TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, try again later"


class Handler:
    """aiosmtpd hooks: accept our VERP mailboxes, hand each message over once per recipient.

    ``threads`` is how many messages one transaction takes at most; without ``read``,
    ``deliver`` is handed (raw, recipient) pairs.
    """

    def __init__(self, deliver: Deliver, *, threads: int = 4, read: Read | None = None) -> None:
        self._deliver = deliver
        self._read = read or _as_received
        self._limit = threads
        self._waiting: queue.SimpleQueue = queue.SimpleQueue()
        # One worker thread per process. A second one, classifying while the first commits,
        # made groups smaller: it cost more CPU (per report, two runs each of bench/inbound.py
        # on the shared 2-core machine: server 2.8 ms and PostgreSQL 0.96 ms, against 2.7 ms
        # and 0.83 ms with one) and delivered fewer reports a second.
        self._worker = threading.Thread(target=self._work, name="lmtp", daemon=True)
        self._worker.start()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        local = address.rpartition("@")[0].lower()
        if local.partition("+")[0] not in PURPOSES:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        waiting = []
        for recipient in envelope.rcpt_tos:
            future = loop.create_future()
            try:
                self._waiting.put((self._read(raw, recipient), future))
            except Exception as exc:  # noqa: BLE001 - answered 451: the MTA tries again
                future.set_result(exc)
            waiting.append(future)
        replies = []
        for outcome in await asyncio.gather(*waiting):
            if isinstance(outcome, Exception):
                log.warning("inbound message not taken: %s", type(outcome).__name__)
                replies.append(TEMPORARY_FAILURE)
            else:
                replies.append(f"250 2.0.0 Ok: {outcome}")
        return "\r\n".join(replies)

    def _work(self) -> None:
        """Take what is waiting (at least one message), deliver it together, answer each."""
        while True:
            group = [self._waiting.get()]
            while group[-1] is not None and len(group) < self._limit:
                try:
                    group.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            stop = group[-1] is None
            if stop:
                group.pop()
            if group:
                self._answer(group)
            if stop:
                return

    def _answer(self, group: list) -> None:
        try:
            outcomes = self._deliver([item for item, _ in group])
        except Exception as exc:  # noqa: BLE001 - the MTA keeps the messages and retries
            outcomes = [exc] * len(group)
        for (_, future), outcome in zip(group, outcomes, strict=True):
            try:
                future.get_loop().call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the server stopped meanwhile: the MTA sends it again
                pass

    def close(self) -> None:
        """Finish the messages in hand, then stop the worker thread."""
        self._waiting.put(None)
        self._worker.join()


def _as_received(raw: bytes, recipient: str) -> tuple[bytes, str]:
    return raw, recipient


def _settle(future: asyncio.Future, outcome: str | Exception) -> None:
    if not future.done():  # the client went away meanwhile: nothing to answer
        future.set_result(outcome)


# ``<local@domain>`` with a dot-atom local part and a plain domain: what MTAs send us.
_PLAIN_PATH = re.compile(
    r"[ \t]*<((?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\.)*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*(.*)\Z",
    re.DOTALL,
)


_NULL_PATH = re.compile(r"[ \t]*<>(.*)\Z", re.DOTALL)
# A line of the content that starts with a dot was sent with one more (RFC 5321 4.5.2).
_STUFFED = re.compile(rb"^\.", re.MULTILINE)
_END_OF_DATA = b".\r\n"


class _Server(LMTP):
    # Reports quote what others wrote: be lenient about RFC 5321's 1000-octet lines.
    line_length_limit = 16_384

    def _getaddr(self, arg: str):
        """Read a plain ``<local@domain>`` path or the null path ``<>`` (the sender of every
        bounce) at C speed, anything else as aiosmtpd does.

        aiosmtpd runs the ``email`` package's full RFC 5322 address parser (and defines a
        class) for every MAIL and RCPT: a tenth of the server's CPU per report.
        """
        null = _NULL_PATH.match(arg or "")
        if null is not None:
            return "<>", null.group(1)
        plain = _PLAIN_PATH.match(arg or "")
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain.groups()
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        """aiosmtpd's DATA with a lean reading loop: the same replies, limits and content.

        aiosmtpd does its bookkeeping for every line of the content (a debug log call, a list
        of fragments joined, three state checks): half the protocol's CPU per report.
        """
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content, refusal = await self._read_content()
        except asyncio.CancelledError:  # the connection went away during DATA
            self._writer.close()
            raise
        if refusal is None:
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            reply = "250 OK" if status is MISSING else status
        else:
            reply = refusal
        self._set_post_data_state()
        await self.push(reply)

    async def _read_content(self) -> tuple[bytes, str | None]:
        """Read up to the lone dot; return the content unstuffed, or why it is refused.

        It reads from one line that ends in a dot to the next (most lines do not), so a
        report costs a few reads, not one per line. Past ``data_size_limit`` the rest is read
        and dropped and the refusal answered after it (RFC 5321 4.2.5), as aiosmtpd does.
        Lines are not limited one by one: reports quote what others wrote.
        """
        reader = self._reader
        # Content past this many octets (with the dot line) is over the limit: dropped.
        over = self.data_size_limit + len(_END_OF_DATA) if self.data_size_limit else None
        pieces: list[bytes] = []
        size = 0
        tail = b"\r\n"  # the last two octets read: the DATA line's end, at first
        while True:
            try:
                piece = await reader.readuntil(_END_OF_DATA)
            except asyncio.LimitOverrunError as overrun:  # no dot line within the buffer
                piece = await reader.readexactly(overrun.consumed)
            before = piece[-5:-3] if len(piece) >= 5 else (tail + piece[:-3])[-2:]
            size += len(piece)
            if over is None or size <= over:
                pieces.append(piece)
            else:
                pieces.clear()  # refused below, once the rest is read
            if piece.endswith(_END_OF_DATA) and before == b"\r\n":
                break
            tail = piece[-2:] if len(piece) >= 2 else (tail + piece)[-2:]
        if over is not None and size > over:
            return b"", "552 Error: Too much mail data"
        content = b"".join(pieces)[: -len(_END_OF_DATA)]
        if content[:1] == b"." or b"\n." in content:
            content = _STUFFED.sub(b"", content)
        return content, None


class LmtpController(Controller):
    """aiosmtpd's threaded controller, speaking LMTP instead of SMTP.

    With ``handed`` it does not listen: it serves the connections that ``serve``'s supervisor
    accepted and hands over that Unix socket (``hand_out``), one server process of several,
    so a report's CPU work is not bound to one GIL. ``on_closed`` is called when the
    supervisor is gone.
    """

    def __init__(
        self,
        handler,
        *,
        handed: socket.socket | None = None,
        on_closed: Callable[[], None] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.handed = handed
        self.on_closed = on_closed

    def factory(self) -> LMTP:
        return _Server(self.handler, **self.SMTP_kwargs)

    def _create_server(self):
        if self.handed is not None:
            return self._take_handed()
        return self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
        )

    async def _take_handed(self) -> HandedConnections:
        return HandedConnections(self.loop, self.handed, self._factory_invoker, self.on_closed)

    def _trigger_server(self) -> None:
        # aiosmtpd connects once to see its factory work; a process served by hand-over has
        # no port of its own, so the factory is tried in this server's own loop.
        if self.handed is None:
            super()._trigger_server()
            return
        asyncio.run_coroutine_threadsafe(self._try_factory(), self.loop).result(
            timeout=self.ready_timeout
        )

    async def _try_factory(self) -> None:
        self._factory_invoker()


class HandedConnections:
    """Serve the connections handed over a Unix socket (SCM_RIGHTS), in place of a listener.

    Shaped as the ``asyncio.Server`` the controller expects (``close``, ``wait_closed``).
    """

    def __init__(self, loop, channel: socket.socket, factory, on_closed) -> None:
        self._loop = loop
        self._channel = channel
        self._factory = factory
        self._on_closed = on_closed
        self._serving: set[asyncio.Task] = set()
        self._open = True
        channel.setblocking(False)
        loop.add_reader(channel.fileno(), self._take)

    def _take(self) -> None:
        while self._open:
            try:
                message, fds, _, _ = socket.recv_fds(self._channel, 1, 4)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, fds = b"", []
            if not message and not fds:  # the supervisor is gone
                self.close()
                if self._on_closed is not None:
                    self._on_closed()
                return
            for fd in fds:
                connection = socket.socket(fileno=fd)
                task = self._loop.create_task(
                    self._loop.connect_accepted_socket(self._factory, sock=connection)
                )
                self._serving.add(task)
                task.add_done_callback(self._serving.discard)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._loop.remove_reader(self._channel.fileno())

    async def wait_closed(self) -> None:
        return None


def hand_out(listener: socket.socket, channels: Sequence[socket.socket]) -> None:
    """Accept connections on ``listener`` and hand them to the server processes in turn.

    The kernel's ``SO_REUSEPORT`` spread long-lived MTA connections by a hash of their
    addresses: 16 connections over 2 processes often went 11 to 5, and the busier process's
    GIL set the pace. Returns when the listener is closed.
    """
    for turn in itertools.count():
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            try:
                socket.send_fds(channels[turn % len(channels)], [b"c"], [connection.fileno()])
            except OSError:  # that process is gone: the supervisor stops the others
                pass


def controller(
    deliver: Deliver,
    *,
    host: str,
    port: int,
    threads: int = 4,
    read: Read | None = None,
    handed: socket.socket | None = None,
    on_closed: Callable[[], None] | None = None,
) -> LmtpController:
    """Return a controller (``start()``/``stop()``) serving LMTP on ``host:port``, or the
    connections handed over ``handed``."""
    return LmtpController(
        Handler(deliver, threads=threads, read=read),
        handed=handed,
        on_closed=on_closed,
        hostname=host,
        port=port,
        data_size_limit=MAX_MESSAGE,
        enable_SMTPUTF8=True,
        decode_data=False,
        ident="prefsvc LMTP",
    )
