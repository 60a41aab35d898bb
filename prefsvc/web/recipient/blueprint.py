"""The recipient blueprint and what all its pages share: language, headers, notices.

The area modules (``unsubscribe``, ``preferences``, ``signin``) register their views on ``bp``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, g, request
from flask.blueprints import BlueprintSetupState
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException

from prefsvc import clock
from prefsvc.errors import InvalidToken
from prefsvc.extensions import db
from prefsvc.mail import layout, notices
from prefsvc.queue import broker
from prefsvc.settings import current_settings
from prefsvc.web.error_pages import http_error
from prefsvc.web.recipient.links import any_link, speak_to
from prefsvc.web.request_logs import RedactedInRequestLogs

bp = Blueprint("recipient", __name__)
LANGUAGE_NAMES = (("nl", "Nederlands"), ("fr", "Français"), ("en", "English"))
log = logging.getLogger(__name__)
LINKS = ("/u/", "/p/", "/c/")


class RedactTokens(RedactedInRequestLogs):
    """Replace link tokens in logged request paths: a token in a log is a working link."""

    PATTERN = re.compile(r"(?<=[\s\"'])/([upc])/[^/\s?\"']+")
    REPLACEMENT = r"/\1/[token]"


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    RedactTokens.install()


@bp.app_context_processor
def _page_language() -> dict[str, object]:
    """Give every page (errors and outbox too) its language and the language links."""
    return {"page_lang": str(get_locale() or "nl"), "languages": LANGUAGE_NAMES}


@bp.app_context_processor
def _organisation() -> dict[str, object]:
    """Name who is asking on every page a person reaches from our mail (issue 18)."""
    return {"organisation": layout.Identity.from_settings(current_settings())}


@bp.before_app_request
def _fresh_language() -> None:
    """Start every request's language choice clean.

    ``g`` belongs to the app context, which outlives one request when a caller keeps it
    pushed (tests, scripts); a previous request's contact must not choose this page's language.
    """
    g.pop("locale", None)
    g.pop("_flask_babel", None)


@bp.after_app_request
def _no_store(response: Response) -> Response:
    """Token pages hold personal data and capabilities: keep them out of every cache.

    By path, not by blueprint, so that a link no route matches (a mangled token holding a
    slash) gets the same headers as any other bad link.
    """
    if request.blueprint == bp.name or request.path == "/p" or request.path.startswith(LINKS):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_errorhandler(429)
def _too_many(error: HTTPException) -> tuple[Response | str, int]:
    """Say "too many attempts" in the person's language when the link names them."""
    token = (request.view_args or {}).get("token")
    if token and request.blueprint == bp.name:
        try:
            speak_to(any_link(token).contact)
        except InvalidToken:
            pass
    return http_error(error)


def notify(kind: str, contact_id: int, params: dict[str, Any]) -> None:
    """Hold a notice in the request's transaction (the job outbox); the view commits it with
    the change that asks for it, then calls ``notices_committed``. No broker call here: with
    the broker down the mail waits, and the page may truthfully say it is on its way."""
    notices.hold(db.session, kind, contact_id, params, now=clock.now())


def notices_committed() -> None:
    """Let the in-process relay queue what was just committed (a no-op with a broker service)."""
    broker.queue().jobs_held()
