"""Read-only view of the Maildir outbox, so a newcomer can open delivered mail and click it.

Only when MAIL_URL is a Maildir, and only from this machine (loopback), since it shows mail.
"""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint, Response, abort, render_template, request

from prefsvc.settings import current_settings

bp = Blueprint("outbox", __name__, url_prefix="/outbox")
LOOPBACK = {"127.0.0.1", "::1"}
MESSAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _box() -> mailbox.Maildir:
    url = current_settings().mail_url
    if not url.startswith("maildir:") or request.remote_addr not in LOOPBACK:
        abort(404)
    path = Path(url.removeprefix("maildir:"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, create=True)  # makes cur/, new/ and tmp/ as well


_NEVER = datetime.min.replace(tzinfo=UTC)


def _sent_at(message: EmailMessage) -> datetime | None:
    """The message's ``Date`` as an instant (shown in ``TIMEZONE``), or None if unreadable."""
    moment = getattr(message["Date"], "datetime", None)
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse(box: mailbox.Maildir, key: str) -> EmailMessage:
    try:
        data = box.get_bytes(key)
    except KeyError:
        abort(404)
    return BytesParser(policy=policy.default).parsebytes(data)


@bp.get("/")
def index():
    box = _box()
    messages = []
    for key in box.keys():
        message = _parse(box, key)
        messages.append(
            {
                "key": key,
                "to": message["To"],
                "subject": message["Subject"],
                "date": _sent_at(message),
            }
        )
    messages.sort(key=lambda m: (m["date"] or _NEVER, m["key"]), reverse=True)
    response = Response(render_template("outbox/index.html", messages=messages))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<key>")
def show(key: str):
    """Serve the message's HTML part as the recipient would see it (inline CSS allowed)."""
    message = _parse(_box(), key)
    part = message.get_body(preferencelist=("html", "plain"))
    if part is None:
        abort(404)
    body = part.get_content()
    if part.get_content_subtype() == "plain":
        response = Response(body, mimetype="text/plain")
    else:
        response = Response(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = MESSAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<key>/source")
def source(key: str):
    box = _box()
    _parse(box, key)
    response = Response(box.get_bytes(key), mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response
