"""prefsvc: email and newsletter preference service.

``create_app`` wires settings, extensions, blueprints, CLI commands and the task broker; it is
the only place that knows about all of them.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from flask import Flask, g, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from prefsvc.clock import EXTENSION_KEY as CLOCK_KEY
from prefsvc.clock import Clock
from prefsvc.settings import SETTINGS_KEY, Settings

PACKAGE_DIR = Path(__file__).resolve().parent
LANGUAGES = ("nl", "fr", "en")


def resource_dir(name: str) -> Path:
    """Return a top-level folder (templates, migrations), packaged or in the checkout."""
    packaged = PACKAGE_DIR / name
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / name


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
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        TESTING=settings.testing,
        BABEL_DEFAULT_LOCALE="nl",
        BABEL_DEFAULT_TIMEZONE=settings.timezone.key,
        BABEL_TRANSLATION_DIRECTORIES=str(PACKAGE_DIR / "translations"),
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        RATELIMIT_STORAGE_URI=_rate_limit_storage(settings),
        RATELIMIT_HEADERS_ENABLED=False,
        # Limits are a safeguard: a Redis outage must not turn unsubscribes away.
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    )
    app.extensions[SETTINGS_KEY] = settings
    if clock is not None:
        app.extensions[CLOCK_KEY] = clock

    from prefsvc import tasks
    from prefsvc.extensions import babel, csrf, db, limiter, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(resource_dir("migrations")))
    babel.init_app(app, locale_selector=_select_locale)
    csrf.init_app(app)
    limiter.init_app(app)
    if web:
        from prefsvc import cli
        from prefsvc import web as web_side

        web_side.init_app(app)
        cli.init_app(app)
    tasks.init_app(app)
    logging.getLogger("cssutils").setLevel(logging.CRITICAL)
    return app


def _select_locale() -> str:
    """Pick the page language: the contact's, then an explicit choice, then Accept-Language."""
    chosen = g.get("locale")
    if chosen in LANGUAGES:
        return chosen
    explicit = request.args.get("lang") or request.form.get("lang")
    if explicit in LANGUAGES:
        return explicit
    return request.accept_languages.best_match(LANGUAGES) or "nl"


def _rate_limit_storage(settings: Settings) -> str:
    """Count in Redis when the broker is Redis (shared by every web process), else in memory."""
    url = settings.broker_url or ""
    return url if url.startswith(("redis://", "rediss://")) else "memory://"


def _engine_options(url: str) -> dict[str, object]:
    # hide_parameters: a logged database error never shows bound values (addresses, SMTP replies).
    if url.startswith("sqlite"):
        return {
            "connect_args": {"timeout": 30, "check_same_thread": False},
            "hide_parameters": True,
        }
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20, "hide_parameters": True}


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
