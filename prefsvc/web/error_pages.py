"""One answer for every HTTP error: a readable page, or a JSON problem under ``/api``."""

from __future__ import annotations

import logging

from flask import Response, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from prefsvc.extensions import db
from prefsvc.web.api import problems

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


def http_error(error: HTTPException) -> tuple[Response | str, int]:
    """Answer every HTTP error with a readable page, or a JSON problem under /api."""
    code = error.code or 500
    if request.path.startswith("/api/"):
        return problems.http_error(error), code  # the API blueprint's own answer
    return render_template("error.html", code=code, title=error.name), code


def database_unavailable(error: OperationalError) -> tuple[Response | str, int, dict[str, str]]:
    """A lost or busy database is a 503 to retry, not a 500: nothing was changed.

    The pool throws away a connection that failed this way, so the retry gets a fresh one.
    """
    db.session.rollback()
    log.warning("database unavailable: %s", type(error.orig).__name__)
    body, code = http_error(ServiceUnavailable())
    return body, code, {"Retry-After": str(RETRY_AFTER_SECONDS)}
