"""The ``/u`` pages: what an unsubscribe link would do, one-click (RFC 8058), undo, and all.

The signed token in the URL is the capability: these actions need no cookie, session or CSRF
token, so mail providers can POST them. GET and HEAD never change anything, because mail
scanners and link previews fetch every link.
"""

from __future__ import annotations

import re

from flask import abort, current_app, render_template, request, url_for
from flask_babel import get_locale
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import TooManyRequests

from prefsvc import clock
from prefsvc.consent import changes as consent
from prefsvc.errors import InvalidToken, Suppressed
from prefsvc.extensions import csrf, db
from prefsvc.models import Contact, Topic
from prefsvc.recipient import links as recipient_links
from prefsvc.recipient.acknowledgements import OPTOUT
from prefsvc.settings import current_settings
from prefsvc.web.languages import explicit_language
from prefsvc.web.recipient.blueprint import bp, notices_committed, notify
from prefsvc.web.recipient.links import signer, speak, unsubscribe_link
from prefsvc.web.recipient.rate_limits import OneClickFloodGuard, per_client_on_links, per_link

# Stand-ins for the two tokens on an unsubscribe page: letters only, so that URL quoting and
# HTML escaping leave them as they are (a topic whose name holds one is rendered directly).
_LINK_STAND_IN = "PrefsvcUnsubscribeTokenStandIn"
_PREFERENCES_STAND_IN = "PrefsvcPreferencesTokenStandIn"
_PAGES_KEY = "prefsvc.unsubscribe_pages"
_PAGES_KEPT = 512
_URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


def _unsubscribe_page(token: str, link: recipient_links.UnsubscribeLink, state: str) -> str:
    """Render the ``/u`` page, from a copy made once per topic, state and language.

    Mail scanners GET every link and mailbox providers POST one-click unsubscribes by the
    hundred a second while a campaign goes out; the page differs between people only in
    its two tokens, so those are put into a page rendered with stand-ins.
    """
    if link.objected and state != "all":
        state = "objected"
    preferences_token = signer().preferences_token(link.public_id)
    language = str(get_locale())
    topic_name = link.topic_name_in(language)
    if (
        not (_URL_SAFE.fullmatch(token) and _URL_SAFE.fullmatch(preferences_token))
        or _LINK_STAND_IN in topic_name
        or _PREFERENCES_STAND_IN in topic_name
    ):
        return _render_unsubscribe_page(state, topic_name, token, preferences_token)
    key = (state, topic_name, explicit_language(), language, request.script_root)
    pages = current_app.extensions.setdefault(_PAGES_KEY, {})
    page = pages.get(key)
    if page is None:
        if len(pages) >= _PAGES_KEPT:
            pages.clear()
        page = pages[key] = _render_unsubscribe_page(
            state, topic_name, _LINK_STAND_IN, _PREFERENCES_STAND_IN
        )
    return page.replace(_LINK_STAND_IN, token).replace(_PREFERENCES_STAND_IN, preferences_token)


def _render_unsubscribe_page(
    state: str, topic_name: str, token: str, preferences_token: str
) -> str:
    return render_template(
        "recipient/unsubscribe.html",
        state=state,
        topic_name=topic_name,
        token=token,
        lang=explicit_language(),
        lang_base=url_for("recipient.unsubscribe_page", token=token),
        preferences_url=url_for(
            "recipient.preferences_page", token=preferences_token, lang=explicit_language()
        ),
    )


@bp.get("/u/<token>")
@per_client_on_links
@per_link
def unsubscribe_page(token: str) -> str:
    """Show what the link would do, and a button that does it; change nothing."""
    link = unsubscribe_link(token)
    return _unsubscribe_page(token, link, "offer" if link.subscribed else "unsubscribed")


@bp.post("/u/<token>")
@csrf.exempt
def one_click(token: str) -> str:
    """Leave the link's topic (RFC 8058 one-click): any body, no cookie, 200, never a redirect.

    Limited per client only, not per link: posting a link again changes and mails nothing.
    """
    guard = OneClickFloodGuard.of(current_app)
    if not guard.admit(current_settings().rate_limit_one_click_client, get_remote_address()):
        raise TooManyRequests()
    try:
        link, left = recipient_links.leave_by_link(
            db.session, signer(), token, channel="one-click", now=clock.now(), today=clock.today()
        )
    except InvalidToken:
        abort(404)
    if db.session().in_transaction():  # on PostgreSQL the statement committed by itself
        db.session.commit()
    speak(link.language)
    if left:  # the acknowledgement was committed to the outbox with the unsubscribe
        notices_committed()
    return _unsubscribe_page(token, link, "unsubscribed")


@bp.post("/u/<token>/undo")
@per_client_on_links
@per_link
@csrf.exempt
def undo(token: str) -> str:
    """Put the person back on the topic they just left, unless they left everything."""
    link = unsubscribe_link(token)
    try:
        recipient_links.undo_unsubscribe(
            db.session,
            db.session.get_one(Contact, link.contact_id),
            db.session.get_one(Topic, link.topic_id),
            suppression_key=current_settings().suppression_key,
            now=clock.now(),
            today=clock.today(),
        )
    except Suppressed:
        db.session.rollback()
        return _unsubscribe_page(token, link, "objected")
    db.session.commit()
    return _unsubscribe_page(token, link, "resubscribed")


@bp.post("/u/<token>/all")
@per_client_on_links
@per_link
@csrf.exempt
def unsubscribe_all(token: str) -> str:
    """Object to all direct marketing: every topic off and the address suppressed, for good."""
    link = unsubscribe_link(token)
    objected = consent.object_to_all(
        db.session,
        db.session.get_one(Contact, link.contact_id),
        channel="one-click",
        now=clock.now(),
        suppression_key=current_settings().suppression_key,
    )
    if objected:  # held with the objection: both are committed, or neither
        notify(OPTOUT, link.contact_id, {"everything": True})
    db.session.commit()
    if objected:
        notices_committed()
    return _unsubscribe_page(token, link, "all")
