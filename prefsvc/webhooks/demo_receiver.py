"""The demo's webhook receiver: a tiny local HTTP server that checks signatures and shows them.

``prefsvc demo`` starts it on the next port and registers it as an endpoint for every event,
so an unsubscribe in the demo can be watched arriving, signed, at ``http://127.0.0.1:PORT/``.
It keeps the last ``KEEP`` events in memory and answers on loopback only; a demo aid, not a
component of the service. Its page speaks nl/fr/en by the admin's rule: ``?lang=``, then the
browser's ``Accept-Language``, then Dutch; links on the page switch.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from prefsvc.mail.notices import LANGUAGE_NAMES, N_, translate
from prefsvc.models import LANGUAGES, WebhookEndpoint
from prefsvc.webhooks import endpoints, events, signing

KEEP = 50
TITLE = N_("Demo webhook receiver")
HEADING = N_("Webhooks received (newest first)")
INTRO = N_(
    "prefsvc posts every event here, signed (Standard Webhooks). This page refreshes itself "
    "every 3 seconds."
)
RECEIVED_AT = N_("Received at")
SIGNATURE = N_("Signature")
EVENT = N_("Event")
SIGNATURE_OK = N_("signature ok")
SIGNATURE_BAD = N_("wrong signature")
NOTHING_YET = N_(
    "Nothing received yet: unsubscribe from a mail in the outbox, then come back here."
)


def language(query: str, accept_language: str | None) -> str:
    """Pick the page language as the admin does: ``?lang=``, then Accept-Language, then nl."""
    chosen = parse_qs(query).get("lang", [""])[0]
    if chosen in LANGUAGES:
        return chosen
    accepted = parse_accept_header(accept_language, LanguageAccept)
    return accepted.best_match(LANGUAGES) or "nl"


def page(received: Iterable[tuple[str, bool, str]], lang: str) -> str:
    """Return the receiver's HTML page in ``lang``: what arrived, and whether it was signed."""

    def t(message: str) -> str:
        return html.escape(translate(lang, message))

    verdicts = {True: t(SIGNATURE_OK), False: f"<strong>{t(SIGNATURE_BAD)}</strong>"}
    rows = "".join(
        f"<tr><td>{at}</td><td>{verdicts[good]}</td>"
        f"<td><pre>{html.escape(_pretty(body))}</pre></td></tr>"
        for at, good, body in received
    )
    switch = " | ".join(
        f'<a href="?lang={code}" hreflang="{code}" lang="{code}">{LANGUAGE_NAMES[code]}</a>'
        for code in LANGUAGES
        if code != lang
    )
    empty = f'<tr><td colspan="3">{t(NOTHING_YET)}</td></tr>'
    return (
        f'<!doctype html><html lang="{lang}"><meta charset=utf-8>'
        "<meta http-equiv=refresh content=3>"
        f"<title>{t(TITLE)}</title><nav>{switch}</nav><h1>{t(HEADING)}</h1><p>{t(INTRO)}</p>"
        f"<table border=1 cellpadding=4><thead><tr><th>{t(RECEIVED_AT)}</th>"
        f"<th>{t(SIGNATURE)}</th><th>{t(EVENT)}</th></tr></thead>"
        f"<tbody>{rows or empty}</tbody></table></html>"
    )


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


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
            lang = language(urlsplit(self.path).query, self.headers.get("Accept-Language"))
            body = page(list(received), lang).encode()
            self._answer(200, body, "text/html; charset=utf-8")

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
