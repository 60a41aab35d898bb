"""Warm a new web process before it takes requests (gunicorn's ``post_worker_init`` hook).

A fresh process compiles its templates, SQL statements and translation catalogues and opens
its database connections on the first requests it serves: 50–70 ms under gunicorn for its
first one-click POST instead of ≈ 6 ms. Mailbox providers post one-click unsubscribes by the
hundred a second while a campaign goes out, so the requests behind those first ones queued: every
deploy or restarted worker showed as a second or two of answers taking hundreds of ms.
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from prefsvc.extensions import db
from prefsvc.mail import kit
from prefsvc.models import LANGUAGES
from prefsvc.settings import current_settings

log = logging.getLogger(__name__)

# A contact's public id is hex and topic ids start at 1: the warm-up links name nobody, so
# the requests find nothing, change nothing and get the "this link no longer works" page.
NOBODY, NO_TOPIC = "warm-up", 0
# A documentation address (RFC 5737): the warm-up counts against no real client's limits.
WARM_UP_CLIENT = "192.0.2.1"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def warm_up(app: Flask, *, connections: int) -> None:
    """Open ``connections`` database connections and serve the busiest pages once per language.

    A database that is down does not stop the process from starting: it answers 503 until
    the database is back, as it would if the database went away later.
    """

    with app.app_context():
        _open_connections(connections)
        signer = kit.signer(current_settings())
        link = f"/u/{signer.unsubscribe_token(NOBODY, NO_TOPIC)}"
        preferences = f"/p/{signer.preferences_token(NOBODY)}"
    client = app.test_client()
    for language in LANGUAGES:
        options = {
            "headers": {"Accept-Language": language},
            "environ_base": {"REMOTE_ADDR": WARM_UP_CLIENT},
        }
        client.post(link, data=ONE_CLICK, **options)
        client.get(link, **options)
        client.get(preferences, **options)
    for name in app.jinja_env.list_templates(filter_func=_recipient_page):
        app.jinja_env.get_template(name)


def _open_connections(wanted: int) -> None:
    """Fill the pool with connections at once, as many as the process has threads."""
    pool = db.engine.pool
    size = pool.size() if hasattr(pool, "size") else wanted
    held = []
    try:
        for _ in range(min(wanted, size)):
            held.append(db.engine.connect())
    except SQLAlchemyError as error:
        reason = type(error).__name__
        log.warning("database unavailable at start-up (%s): connecting on demand", reason)
    finally:
        for connection in held:
            connection.close()


def _recipient_page(name: str) -> bool:
    return name.startswith("recipient/") or name in {"base.html", "error.html"}
