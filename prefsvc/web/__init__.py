"""HTTP side: blueprints, one error mapping, and the security headers every page carries."""

from __future__ import annotations

import logging

from flask import Flask, Request, Response, jsonify, render_template, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def init_app(app: Flask) -> None:
    from prefsvc.web import admin, api, ops, outbox, recipient, renewal

    app.register_blueprint(recipient.bp)
    app.register_blueprint(renewal.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(outbox.bp)
    admin.init_app(app)
    api.init_app(app)
    app.session_interface = CookieSessions()
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_unavailable)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with nothing to do for a request that has no cookie.

    Most requests carry none (links opened from mail, one-click POSTs from mailbox
    providers); Flask would still build a signing serializer for each.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def explicit_language() -> str | None:
    """Return the language the person picked on the page (a ``?lang=`` link), if any."""
    from prefsvc.resources import LANGUAGES

    chosen = request.args.get("lang")
    return chosen if chosen in LANGUAGES else None


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _http_error(error: HTTPException) -> tuple[Response | str, int]:
    """Answer every HTTP error with a readable page, or a JSON problem under /api."""
    code = error.code or 500
    if request.path.startswith("/api/"):
        problem = jsonify(
            type="about:blank", title=error.name, status=code, detail=error.description
        )
        problem.mimetype = "application/problem+json"
        return problem, code
    return render_template("error.html", code=code, title=error.name), code


def _database_unavailable(error: OperationalError) -> tuple[Response | str, int, dict[str, str]]:
    """A lost or busy database is a 503 to retry, not a 500: nothing was changed.

    The pool throws away a connection that failed this way, so the retry gets a fresh one.
    """
    from prefsvc.extensions import db

    db.session.rollback()
    log.warning("database unavailable: %s", type(error.orig).__name__)
    body, code = _http_error(ServiceUnavailable())
    return body, code, {"Retry-After": str(RETRY_AFTER_SECONDS)}
