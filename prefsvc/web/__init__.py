"""HTTP side: blueprints, one error mapping, and the security headers every page carries.

Only a web process imports this package (``create_app(web=True)``); a worker never loads it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from prefsvc.settings import SETTINGS_KEY
from prefsvc.web import admin, json_bodies, ops, outbox, recipient, renewal, uploads
from prefsvc.web.api import setup as api_setup
from prefsvc.web.error_pages import database_unavailable, http_error

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


HSTS = "max-age=31536000; includeSubDomains"


def init_app(app: Flask) -> None:
    app.json = json_bodies.JSONProvider(app)
    app.request_class = uploads.Request
    recipient.init_app(app)
    app.register_blueprint(renewal.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(outbox.bp)
    admin.init_app(app)
    api_setup.init_app(app)
    app.session_interface = CookieSessions()
    headers = security_headers(app.extensions[SETTINGS_KEY])
    app.after_request(lambda response: _security_headers(response, headers))
    if app.extensions[SETTINGS_KEY].base_url.startswith("https://"):
        app.after_request(_strict_transport_security)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(OperationalError, database_unavailable)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with nothing to do for a request that has no cookie.

    Most requests carry none (links opened from mail, one-click POSTs from mailbox
    providers); Flask would still build a signing serializer for each.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def security_headers(settings) -> dict[str, str]:
    """Return the headers every page carries; a ``LOGO_URL`` elsewhere may be shown as an image."""
    if not settings.logo_url:
        return SECURITY_HEADERS
    parts = urlsplit(settings.logo_url)
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:", f"img-src 'self' data: {parts.scheme}://{parts.netloc}"
    )
    return SECURITY_HEADERS | {"Content-Security-Policy": policy}


def _security_headers(response: Response, headers: dict[str, str]) -> Response:
    for name, value in headers.items():
        response.headers.setdefault(name, value)
    return response


def _strict_transport_security(response: Response) -> Response:
    """Tell browsers to come back over https only (set when ``BASE_URL`` is https)."""
    response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response
