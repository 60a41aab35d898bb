"""The demo's webhook receiver: a tiny local HTTP server that checks signatures and shows them.

``prefsvc demo`` starts it on the next port and registers it as an endpoint for every event,
so an unsubscribe in the demo can be watched arriving, signed, at ``http://127.0.0.1:PORT/``.
It keeps the last ``KEEP`` events in memory and answers on loopback only; a demo aid, not a
component of the service.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.models import WebhookEndpoint
from prefsvc.webhooks import endpoints, events, signing

KEEP = 50


def start(secret: str, host: str, port: int) -> deque:
    """Serve on ``host:port`` in a daemon thread; return the deque it records into."""
    received: deque = deque(maxlen=KEEP)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            stamp = self.headers.get("webhook-timestamp", "0")
            ours = signing.sign(secret, self.headers.get("webhook-id", ""), int(stamp), body)
            good = ours in self.headers.get("webhook-signature", "").split(" ")
            received.appendleft((time.strftime("%H:%M:%S"), good, body.decode("utf-8", "replace")))
            self._answer(200, b"ok", "text/plain")

        def do_GET(self):  # noqa: N802
            rows = "".join(
                f"<tr><td>{at}</td><td>{'signature ok' if good else 'BAD SIGNATURE'}</td>"
                f"<td><pre>{html.escape(json.dumps(json.loads(body), indent=2))}</pre></td></tr>"
                for at, good, body in received
            )
            page = (
                "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=3>"
                "<title>webhook receiver</title><h1>Webhooks received (newest first)</h1>"
                f"<table border=1 cellpadding=4>{rows or '<tr><td>nothing yet</td></tr>'}</table>"
            )
            self._answer(200, page.encode(), "text/html; charset=utf-8")

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="demo-receiver", daemon=True).start()
    return received


def register(session: Session, url: str, *, now) -> WebhookEndpoint:
    """Return the demo's endpoint at ``url``, registering it (every event) the first time."""
    found = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.url == url))
    return found or endpoints.create(
        session, url, events.ALL, now=now, description="prefsvc demo receiver"
    )
