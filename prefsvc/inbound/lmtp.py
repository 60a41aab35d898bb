"""``prefsvc inbound serve``: an LMTP server (RFC 2033) for mail to ``BOUNCE_DOMAIN``.

It sits behind the MTA's transport map (Postfix: ``bounces.example.org lmtp:inet:HOST:PORT``)
and answers the DATA of each message once per accepted recipient, as LMTP requires: each
recipient is one VERP address naming one delivery, and one of them may fail while the others
are kept. The work of a message is done by ``Deliver`` (the CLI passes one that opens an app
context and calls ``intake.receive``) in a worker thread, off the event loop; a failure there
answers 451 so the MTA keeps the message and tries again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP

from prefsvc.inbound.verp import PURPOSES

log = logging.getLogger(__name__)

# Take one message for one recipient; return a short outcome for the reply.
Deliver = Callable[[bytes, str], str]
MAX_MESSAGE = 10 << 20  # returned originals may be large; the classifier reads the first 1 MB


class Handler:
    """aiosmtpd hooks: accept our VERP mailboxes, hand each message over once per recipient."""

    def __init__(self, deliver: Deliver, *, threads: int = 4) -> None:
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lmtp")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        local = address.rpartition("@")[0].lower()
        if local.partition("+")[0] not in PURPOSES:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        replies = []
        for recipient in envelope.rcpt_tos:
            try:
                outcome = await loop.run_in_executor(self._pool, self._deliver, raw, recipient)
            except Exception as exc:  # noqa: BLE001 - the MTA keeps the message and retries
                log.warning("inbound message not taken: %s", type(exc).__name__)
                replies.append("451 4.3.0 Temporary failure, try again later")
                continue
            replies.append(f"250 2.0.0 Ok: {outcome}")
        return "\r\n".join(replies)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


# ``<local@domain>`` with a dot-atom local part and a plain domain: what MTAs send us.
_PLAIN_PATH = re.compile(
    r"[ \t]*<((?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\.)*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*(.*)\Z",
    re.DOTALL,
)


class _Server(LMTP):
    # Reports quote what others wrote: be lenient about RFC 5321's 1000-octet lines.
    line_length_limit = 16_384

    def _getaddr(self, arg: str):
        """Read a plain ``<local@domain>`` path at C speed, anything else as aiosmtpd does.

        aiosmtpd runs the ``email`` package's full RFC 5322 address parser (and defines a
        class) for every MAIL and RCPT: a tenth of the server's CPU per report.
        """
        plain = _PLAIN_PATH.match(arg or "")
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain.groups()
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest


class LmtpController(Controller):
    """aiosmtpd's threaded controller, speaking LMTP instead of SMTP.

    With ``reuse_port`` several processes listen on one port (``SO_REUSEPORT``: the kernel
    spreads the MTA's connections over them), so a report's CPU work is not bound to one GIL.
    """

    def __init__(self, handler, *, reuse_port: bool = False, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self.reuse_port = reuse_port

    def factory(self) -> LMTP:
        return _Server(self.handler, **self.SMTP_kwargs)

    def _create_server(self):
        return self.loop.create_server(
            self._factory_invoker,
            host=self.hostname,
            port=self.port,
            ssl=self.ssl_context,
            reuse_port=self.reuse_port or None,
        )

    def _trigger_server(self) -> None:
        # aiosmtpd connects once to see its factory work; with a shared port that connection
        # may reach a sibling process, so the factory is tried in this server's own loop.
        if not self.reuse_port:
            super()._trigger_server()
            return
        asyncio.run_coroutine_threadsafe(self._try_factory(), self.loop).result(
            timeout=self.ready_timeout
        )

    async def _try_factory(self) -> None:
        self._factory_invoker()


def controller(
    deliver: Deliver, *, host: str, port: int, threads: int = 4, reuse_port: bool = False
) -> LmtpController:
    """Return a controller (``start()``/``stop()``) serving LMTP on ``host:port``."""
    return LmtpController(
        Handler(deliver, threads=threads),
        reuse_port=reuse_port,
        hostname=host,
        port=port,
        data_size_limit=MAX_MESSAGE,
        enable_SMTPUTF8=True,
        decode_data=False,
        ident="prefsvc LMTP",
    )
