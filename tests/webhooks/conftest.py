"""A real HTTP receiver on a free port, an independent Standard Webhooks check, and a pump.

``verify`` is the reference algorithm written from the specification (standardwebhooks.com),
not prefsvc's code: base64-decode the secret after ``whsec_``, HMAC-SHA256 over
``id.timestamp.body``, compare in constant time with every ``v1,`` signature of the header.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.models import OutboxJob, WebhookDelivery, WebhookDeliveryStatus
from prefsvc.queue import broker
from prefsvc.webhooks import endpoints
from tests.web.api.conftest import bearer  # noqa: F401 - the API tests' keys


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: int, tolerance=300) -> bool:
    """Return True when one of the ``v1`` signatures is ``secret``'s (Standard Webhooks)."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(now - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{msg_id}.{timestamp}.{body.decode('utf-8')}".encode()
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for versioned in headers["webhook-signature"].split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers ``status``. ``stop()`` and ``start()`` take it down and up."""

    status: int = 200
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _open: set[socket.socket] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                receiver._open.add(self.connection)

            def finish(self):
                receiver._open.discard(self.connection)
                super().finish()

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.status < 300:
                    receiver.received.append(Received(headers, body))
                answer = b"thanks" if receiver.status < 300 else b"receiver broke"
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Go down as a real server does: kept-alive connections are dropped too, or their
        handler threads would go on answering for a receiver that is gone (and, should a later
        receiver get this port, take its requests)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for connection in list(self._open):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._open.clear()

    def events(self) -> list[dict[str, Any]]:
        return [r.payload for r in self.received]


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def endpoint(session, receiver, clock):
    """An endpoint for every event, at the receiver."""
    from prefsvc.webhooks import events

    created = endpoints.create(session, receiver.url, events.ALL, now=clock())
    session.commit()
    return created


def pump(rounds: int = 20) -> None:
    """Relay and deliver until nothing is due or held (each round moves every lane one step).

    A round's jobs may hold jobs of their own (the alert of an endpoint they disabled): the
    next round's ``join`` relays them.
    """
    queue = broker.queue()
    for _ in range(rounds):
        db.session.commit()  # the test's own changes, and a fresh view afterwards
        queue.join()
        db.session.commit()
        due = db.session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(
                WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= clock.now(),
            )
        )
        if not due and not db.session.scalar(select(func.count()).select_from(OutboxJob)):
            return
