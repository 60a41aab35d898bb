"""The renewal page of re-permission mails: GET shows the question, POST renews.

GET and HEAD change nothing (mail scanners fetch every link); the button POSTs to the same
URL. The signed token is the capability, so the POST needs no cookie or CSRF token, like the
one-click unsubscribe. Every bad token gets the same 404, and the page is never cached.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Blueprint, Response, abort, g, render_template, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import format_date, refresh

from prefsvc import clock
from prefsvc.consent import repermission, window
from prefsvc.errors import InvalidToken, Suppressed
from prefsvc.extensions import csrf, db
from prefsvc.mail import kit
from prefsvc.mail.tokens import Signer
from prefsvc.models import Contact
from prefsvc.settings import current_settings
from prefsvc.web.languages import explicit_language
from prefsvc.web.request_logs import RedactedInRequestLogs

bp = Blueprint("renewal", __name__)


class RedactRenewalTokens(RedactedInRequestLogs):
    """Replace renewal tokens in logged request paths: a token in a log is a working link."""

    PATTERN = re.compile(r"(?<=[\s\"'])/r/[^/\s?\"']+")
    REPLACEMENT = "/r/[token]"


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    RedactRenewalTokens.install()


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _signer() -> Signer:
    """The process's signer for the current keys, shared with the sending workers."""

    return kit.signer(current_settings())


def _target(token: str) -> Contact:
    try:
        contact = repermission.open_link(db.session, _signer(), token)
    except InvalidToken:
        abort(404)
    g.locale = explicit_language() or contact.language.value
    refresh()
    return contact


def _page(token: str, contact: Contact, state: str | None = None) -> str:
    settings = current_settings()
    today = clock.today()
    years = settings.marketing_window_years
    expires = window.expires_on(contact.window_anchor, years)
    if state is None:
        if not repermission.can_renew(db.session, contact, settings.suppression_key):
            state = "objected"
        else:
            state = "offer" if window.is_open(contact.window_anchor, years, today) else "expired"
    return render_template(
        "recipient/renewal.html",
        state=state,
        years=years,
        expires_on=format_date(expires, format="long"),
        last_day=format_date(expires - timedelta(days=1), format="long"),
        action_url=url_for("renewal.page", token=token, lang=explicit_language()),
        lang_base=url_for("renewal.page", token=token),
        preferences_url=url_for(
            "recipient.preferences_page",
            token=_signer().preferences_token(contact.public_id),
            lang=explicit_language(),
        ),
    )


@bp.get("/r/<token>")
def page(token: str) -> str:
    """Ask whether to keep informing the person; change nothing."""
    return _page(token, _target(token))


@bp.post("/r/<token>")
@csrf.exempt
def renew(token: str) -> str:
    """Renew the marketing window from today; repeating it is harmless."""
    contact = _target(token)
    try:
        repermission.renew(
            db.session,
            contact,
            now=clock.now(),
            today=clock.today(),
            suppression_key=current_settings().suppression_key,
        )
    except Suppressed:
        db.session.rollback()
        return _page(token, contact, "objected")
    db.session.commit()
    return _page(token, contact, "renewed")
