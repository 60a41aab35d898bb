"""Recipient pages: one-click unsubscribe (RFC 8058), undo, and the preference centre.

The signed token in the URL is the capability: the ``/u`` actions need no cookie, session or
CSRF token, so mail providers can POST them. GET and HEAD never change anything, because mail
scanners and link previews fetch every link. Every bad token gets the same 404, whatever the
reason, and token pages are never cached.
"""

from __future__ import annotations

import logging
import re

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_babel import get_locale, refresh

from prefsvc import LANGUAGES, clock, consent, preferences
from prefsvc.errors import InvalidInput, InvalidToken, Suppressed
from prefsvc.extensions import csrf, db
from prefsvc.models import Contact, Topic
from prefsvc.settings import SETTINGS_KEY, current_settings
from prefsvc.tokens import Signer

bp = Blueprint("recipient", __name__)
SIGNER_KEY = "prefsvc.signer"
LANGUAGE_NAMES = (("nl", "Nederlands"), ("fr", "Français"), ("en", "English"))


# Loggers that write request paths: the dev server's, gunicorn's access log and Flask's own.
PATH_LOGGERS = ("werkzeug", "gunicorn.access", "prefsvc")


class RedactTokens(logging.Filter):
    """Replace link tokens in logged request paths: a token in a log is a working link."""

    PATTERN = re.compile(r"(?<=[\s\"'])/([up])/[^/\s?\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.PATTERN.sub(r"/\1/[token]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    state.app.extensions[SIGNER_KEY] = Signer(state.app.extensions[SETTINGS_KEY].secret_keys)
    for name in PATH_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


@bp.app_context_processor
def _page_language() -> dict[str, object]:
    """Give every page (errors and outbox too) its language and the language links."""
    return {"page_lang": str(get_locale() or "nl"), "languages": LANGUAGE_NAMES}


@bp.before_app_request
def _fresh_language() -> None:
    """Start every request's language choice clean.

    ``g`` belongs to the app context, which outlives one request when a caller keeps it
    pushed (tests, scripts); a previous request's contact must not choose this page's language.
    """
    g.pop("locale", None)
    g.pop("_flask_babel", None)


@bp.after_request
def _no_store(response: Response) -> Response:
    """Token pages hold personal data and capabilities: keep them out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _signer() -> Signer:
    return current_app.extensions[SIGNER_KEY]


def _explicit_language() -> str | None:
    chosen = request.args.get("lang")
    return chosen if chosen in LANGUAGES else None


def _speak_to(contact: Contact) -> None:
    """Answer in the language asked for on this page view, else the contact's own."""
    g.locale = _explicit_language() or contact.language.value
    refresh()


def _unsubscribe_target(token: str) -> tuple[Contact, Topic]:
    try:
        contact, topic = preferences.open_unsubscribe_link(db.session, _signer(), token)
    except InvalidToken:
        abort(404)
    _speak_to(contact)
    return contact, topic


def _preferences_target(token: str) -> Contact:
    try:
        contact = preferences.open_preferences_link(db.session, _signer(), token)
    except InvalidToken:
        abort(404)
    _speak_to(contact)
    return contact


def _unsubscribe_page(token: str, contact: Contact, topic: Topic, state: str) -> str:
    if preferences.has_objected(contact):
        state = "objected" if state != "all" else state
    return render_template(
        "recipient/unsubscribe.html",
        state=state,
        topic=topic,
        token=token,
        lang=_explicit_language(),
        lang_base=url_for("recipient.unsubscribe_page", token=token),
        preferences_url=url_for(
            "recipient.preferences_page",
            token=_signer().preferences_token(contact.public_id),
            lang=_explicit_language(),
        ),
    )


@bp.get("/u/<token>")
def unsubscribe_page(token: str) -> str:
    """Show what the link would do, and a button that does it; change nothing."""
    contact, topic = _unsubscribe_target(token)
    subscribed = preferences.is_subscribed(db.session, contact, topic)
    return _unsubscribe_page(token, contact, topic, "offer" if subscribed else "unsubscribed")


@bp.post("/u/<token>")
@csrf.exempt
def one_click(token: str) -> str:
    """Leave the link's topic (RFC 8058 one-click): any body, no cookie, 200, never a redirect."""
    contact, topic = _unsubscribe_target(token)
    consent.unsubscribe(
        db.session, contact, topic, channel="one-click", now=clock.now(), today=clock.today()
    )
    db.session.commit()
    return _unsubscribe_page(token, contact, topic, "unsubscribed")


@bp.post("/u/<token>/undo")
@csrf.exempt
def undo(token: str) -> str:
    """Put the person back on the topic they just left, unless they left everything."""
    contact, topic = _unsubscribe_target(token)
    try:
        preferences.undo_unsubscribe(
            db.session,
            contact,
            topic,
            suppression_key=current_settings().suppression_key,
            now=clock.now(),
            today=clock.today(),
        )
    except Suppressed:
        db.session.rollback()
        return _unsubscribe_page(token, contact, topic, "objected")
    db.session.commit()
    return _unsubscribe_page(token, contact, topic, "resubscribed")


@bp.post("/u/<token>/all")
@csrf.exempt
def unsubscribe_all(token: str) -> str:
    """Object to all direct marketing: every topic off and the address suppressed, for good."""
    contact, topic = _unsubscribe_target(token)
    consent.object_to_all(
        db.session,
        contact,
        channel="one-click",
        now=clock.now(),
        suppression_key=current_settings().suppression_key,
    )
    db.session.commit()
    return _unsubscribe_page(token, contact, topic, "all")


@bp.get("/p/<token>")
def preferences_page(token: str) -> str:
    contact = _preferences_target(token)
    today = clock.today()
    return render_template(
        "recipient/preferences.html",
        contact=contact,
        choices=preferences.topic_choices(db.session, contact),
        objected=preferences.has_objected(contact),
        paused=preferences.is_paused(contact, today),
        pause_months=preferences.PAUSE_MONTHS,
        notices=get_flashed_messages(),
        form_url=url_for("recipient.preferences_page", token=token, lang=_explicit_language()),
        lang_base=url_for("recipient.preferences_page", token=token),
    )


@bp.post("/p/<token>")
def save_preferences(token: str) -> Response:
    """Apply one of the preference-centre forms (CSRF-protected), then show the page again."""
    contact = _preferences_target(token)
    action = request.form.get("action", "save")
    now, today = clock.now(), clock.today()
    key = current_settings().suppression_key
    keep_language = _explicit_language()
    try:
        if action == "save":
            changes = preferences.save(
                db.session,
                contact,
                topic_ids=_topic_ids(),
                language=request.form.get("language", contact.language.value),
                suppression_key=key,
                now=now,
                today=today,
            )
            notice = "saved"
            if changes.language is not None:
                keep_language = None  # show the next page in the newly chosen language
        elif action == "pause":
            preferences.pause(
                db.session, contact, _int(request.form.get("months")), now=now, today=today
            )
            notice = "paused"
        elif action == "resume":
            preferences.resume(db.session, contact, now=now, today=today)
            notice = "resumed"
        elif action == "all":
            consent.object_to_all(
                db.session, contact, channel=preferences.CHANNEL, now=now, suppression_key=key
            )
            notice = "objected"
        else:
            abort(400)
    except InvalidInput:
        db.session.rollback()
        abort(400)
    except Suppressed:
        db.session.rollback()
        notice = "refused"
    else:
        db.session.commit()
    flash(notice)
    target = url_for("recipient.preferences_page", token=token, lang=keep_language)
    return redirect(target, code=303)


def _topic_ids() -> list[int]:
    return [_int(value) for value in request.form.getlist("topics")]


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise InvalidInput("form", "expected a number") from None
