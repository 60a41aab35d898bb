"""Recipient pages: one-click unsubscribe (RFC 8058), undo, the preference centre, sign-in.

One blueprint, ``recipient`` (``blueprint``: page language, no-store headers, the 429 page,
queued notices), with a module per page family registering its views on it: ``unsubscribe``
(``/u``), ``preferences`` (``/p/<token>``), ``signin`` (``/p``), ``signup`` (``/s``, the
public sign-up with double opt-in) and ``clicks`` (``/c``, the counting redirects of campaigns
that count clicks). ``links`` opens a token
and picks the language to answer in; ``rate_limits`` holds the per-client and per-link limits.

The signed token in the URL is the capability: the ``/u`` actions need no cookie, session or
CSRF token, so mail providers can POST them. GET and HEAD never change anything, because mail
scanners and link previews fetch every link. Every bad token gets the same 404, whatever the
reason, and token pages are never cached.
"""

from __future__ import annotations

from flask import Flask

from prefsvc.web.recipient import (  # noqa: F401 - each registers its views on the blueprint
    clicks,
    preferences,
    signin,
    signup,
    unsubscribe,
)
from prefsvc.web.recipient.blueprint import bp


def init_app(app: Flask) -> None:
    """Register the recipient pages, every page family's views on the one blueprint."""
    app.register_blueprint(bp)
