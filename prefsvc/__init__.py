"""prefsvc: email and newsletter preference service.

``create_app`` wires settings, extensions, blueprints, CLI commands and the task broker; it is
the only place that knows about all of them.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from flask import Flask, g, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import ConnectionPoolEntry
from werkzeug.exceptions import HTTPException

from prefsvc.clock import EXTENSION_KEY as CLOCK_KEY
from prefsvc.clock import Clock
from prefsvc.consent import changes, ledger
from prefsvc.extensions import babel, csrf, db, limiter, migrate
from prefsvc.models import LANGUAGES
from prefsvc.queue import actors
from prefsvc.resources import PACKAGE_DIR, resource_dir
from prefsvc.settings import SETTINGS_KEY, Settings


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, web: bool = True
) -> Flask:
    """Build the Flask app; read ``PREFSVC_*`` from the environment unless settings are given.

    ``web=False`` builds the app of a ``prefsvc worker`` process: same settings, database,
    translations and task broker, but no blueprints, API or CLI, whose imports (flask-smorest,
    marshmallow, apispec, the admin UI) cost a worker about 15 MB it never uses.
    """
    settings = settings or Settings.from_env()
    settings.instance_path.mkdir(parents=True, exist_ok=True)

    app = Flask(
        __name__,
        template_folder=str(resource_dir("templates")),
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.secret_keys[-1],
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url, web=web),
        TESTING=settings.testing,
        BABEL_DEFAULT_LOCALE="nl",
        BABEL_DEFAULT_TIMEZONE=settings.timezone.key,
        BABEL_TRANSLATION_DIRECTORIES=str(PACKAGE_DIR / "translations"),
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind https (BASE_URL), cookies never travel in clear; the http demo keeps working.
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        REMEMBER_COOKIE_SECURE=settings.base_url.startswith("https://"),
        RATELIMIT_STORAGE_URI=_rate_limit_storage(settings),
        RATELIMIT_HEADERS_ENABLED=False,
        # Limits are a safeguard: a Redis outage must not turn unsubscribes away.
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    )
    app.extensions[SETTINGS_KEY] = settings
    if clock is not None:
        app.extensions[CLOCK_KEY] = clock

    db.init_app(app)
    # The ledger's triggers and the PL/pgSQL twins, for ``create_all`` (tests); migrations
    # create them on a real database.
    ledger.attach_server_ddl(db.metadata)
    changes.attach_server_ddl(db.metadata)
    if web:
        with app.app_context():
            _ping_idle_connections(db.engine)
    migrate.init_app(app, db, directory=str(resource_dir("migrations")))
    babel.init_app(app, locale_selector=_select_locale)
    csrf.init_app(app)
    limiter.init_app(app)
    if web:
        # Imported here only: a worker (web=False) never loads the web side (about 15 MB).
        from prefsvc import commands
        from prefsvc import web as web_side

        web_side.init_app(app)
        commands.init_app(app)
    actors.init_app(app)
    logging.getLogger("cssutils").setLevel(logging.CRITICAL)
    return app


def _select_locale() -> str:
    """Pick the page language: the contact's, then an explicit choice, then Accept-Language."""
    chosen = g.get("locale")
    if chosen in LANGUAGES:
        return chosen
    explicit = request.args.get("lang")
    if explicit is None:
        try:
            explicit = request.form.get("lang")
        except HTTPException:  # a body too large: this is its 413 page being rendered
            explicit = None
    if explicit in LANGUAGES:
        return explicit
    return request.accept_languages.best_match(LANGUAGES) or "nl"


def _rate_limit_storage(settings: Settings) -> str:
    """Count in Redis when the broker is Redis (shared by every web process), else in memory."""
    url = settings.broker_url or ""
    return url if url.startswith(("redis://", "rediss://")) else "memory://"


def _engine_options(url: str, *, web: bool) -> dict[str, object]:
    # hide_parameters: a logged database error never shows bound values (addresses, SMTP replies).
    if url.startswith("sqlite"):
        return {
            "connect_args": {"timeout": 30, "check_same_thread": False},
            "hide_parameters": True,
        }
    # A worker checks a connection out once per batch of deliveries: a ping then costs nothing
    # and spares a batch. The web checks out once per request and pings idle ones only.
    return {"pool_pre_ping": not web, "pool_size": 10, "max_overflow": 20, "hide_parameters": True}


# A connection back in the pool after a short while is pinged before it is handed out, one
# used a moment ago is not: under load every connection is reused within milliseconds, and a
# ``SELECT 1`` before each request was a database round trip as dear as the request's own.
PING_IDLE_AFTER_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Replace pooled connections the server dropped while they sat idle (restart, timeout).

    Raising ``InvalidatePoolError`` makes the pool throw away every connection it holds and
    check out a new one. A connection dropped while busy fails its statement instead:
    SQLAlchemy then discards the pool too, the web answers 503 (``prefsvc.web``) and the
    workers retry.
    """
    if engine.dialect.name == "sqlite":
        return

    @event.listens_for(engine, "checkin")
    def _note_checkin(_dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: object, record: ConnectionPoolEntry, _proxy) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_IDLE_AFTER_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise InvalidatePoolError("a pooled connection was dropped") from error


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    """Turn on what SQLite leaves off: foreign keys, WAL for concurrent readers, a busy wait."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
