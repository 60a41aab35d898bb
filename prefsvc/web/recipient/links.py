"""Opening a recipient's link: which token it is, whose, and the language to answer in.

Every bad token gets the same 404, whatever the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g
from flask_babel import refresh

from prefsvc import clock
from prefsvc.errors import InvalidToken
from prefsvc.extensions import db
from prefsvc.mail import kit
from prefsvc.mail.tokens import Signer
from prefsvc.models import Contact, Language
from prefsvc.recipient import links as recipient_links
from prefsvc.settings import current_settings
from prefsvc.web.languages import explicit_language


def signer() -> Signer:
    """The process's signer for the current keys, shared with the sending workers."""

    return kit.signer(current_settings())


def speak_to(contact: Contact) -> None:
    speak(contact.language)


def speak(language: Language) -> None:
    """Answer in the language asked for on this page view, else the contact's own."""
    g.locale = explicit_language() or language.value
    refresh()


def unsubscribe_link(token: str) -> recipient_links.UnsubscribeLink:
    try:
        link = recipient_links.read_unsubscribe_link(db.session, signer(), token)
    except InvalidToken:
        abort(404)
    speak(link.language)
    return link


@dataclass(frozen=True)
class Visit:
    """Who opened the preference centre, and whether with a fresh (24-hour) sign-in link."""

    contact: Contact
    fresh: bool = False
    request_id: int | None = None


def open_preferences(token: str) -> Visit:
    """Open a preference-centre token, or a sign-in token under 24 hours old."""
    try:
        return Visit(recipient_links.open_preferences_link(db.session, signer(), token))
    except InvalidToken:
        contact, claim = recipient_links.open_signin_link(
            db.session, signer(), token, now=clock.now()
        )
        return Visit(contact, fresh=True, request_id=claim.request_id)


def any_link(token: str) -> Visit:
    """Open any recipient token (preferences, sign-in or unsubscribe), or raise InvalidToken."""
    try:
        return open_preferences(token)
    except InvalidToken:
        contact, _topic = recipient_links.open_unsubscribe_link(db.session, signer(), token)
        return Visit(contact)


def preferences_target(token: str) -> Visit:
    try:
        visit = open_preferences(token)
    except InvalidToken:
        abort(404)
    speak_to(visit.contact)
    return visit
