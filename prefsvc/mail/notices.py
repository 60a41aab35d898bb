"""Service messages to one person: opt-out acknowledgements, sign-in links, re-permission mails.

They are transactional: no marketing, no List-Unsubscribe, sent whatever the marketing window
says. A notice is queued by kind and contact id (never an address: queue messages end up in
broker logs) and held in the job outbox with the change that asks for it (``hold``), then
built in the worker by that kind's builder (``notice_kinds.KINDS``), so the web request that
asked for it answers at once, in the same time whether or not anything is sent, and a broker
outage only delays it. Every notice renders here, in this module's own Jinja environment
with the person's catalog: no Flask request or app context, so a worker and the web produce
the same bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

import jinja2
from babel.support import Translations
from sqlalchemy.orm import Session

from prefsvc.mail import kit, rendering
from prefsvc.queue import outbox
from prefsvc.settings import Settings

log = logging.getLogger(__name__)
# How a language is named to the person, in that language (exports, corrections).
LANGUAGE_NAMES = {"nl": "Nederlands", "fr": "Français", "en": "English"}


@dataclass(frozen=True)
class Notice:
    """What one service message says; ``html`` is optional (plain text is the norm)."""

    subject: str
    text: str
    html: str | None = None


def send(
    settings: Settings,
    *,
    to: str,
    notice: Notice,
    now: datetime,
    contact_id: int | None = None,
    kind: str = "notice",
) -> str:
    """Send one notice now through this thread's transport; return its Message-ID.

    With ``BOUNCE_DOMAIN`` and a ``contact_id`` the envelope sender names that contact, so
    a bounce of the notice is read as one of theirs.
    """
    message_id, message = kit.builder(settings).transactional_message(
        to=to,
        subject=notice.subject,
        text=notice.text,
        html=notice.html,
        now=now,
        feedback_id=kit.feedback_id(settings, kind, "service", "notice"),
    )
    if contact_id is None:
        sender = parseaddr(settings.mail_from)[1]
    else:
        sender = kit.notice_envelope(settings, contact_id)
    kit.transport(settings).send(sender=sender, recipients=[to], message=message)
    return message_id


# --- the outbox: notices committed with the change that asks for them ---------------------

ACTOR = "send_notice"


def hold(
    session: Session, kind: str, contact_id: int | None, params: dict[str, Any], *, now: datetime
) -> None:
    """Record a notice in the caller's transaction (``prefsvc.queue.outbox``); a relay queues
    it once that commits. Every service mail goes this way: a broker outage delays it, and
    the person is never told "sent" about a mail that was lost. ``contact_id`` is None for a
    notice to someone who is not a contact (yet): its kind is then one of
    ``notice_kinds.ADDRESSED``, whose builder finds the address from ``params``."""
    outbox.add(session, ACTOR, [kind, contact_id, params], now=now)


@lru_cache(maxsize=8)
def _environment(language: str) -> jinja2.Environment:
    """Return our own (trusted) environment for notice templates, in one language's catalog.

    Templates keep their final newline; the pieces that are included (greeting, footer) and
    the last include of a template end with ``-%}`` or ``-}}``, so an include adds none.
    """
    return rendering.trusted_environment("notices", language, keep_trailing_newline=True)


def render(name: str, language: str, /, **context: Any) -> str:
    """Render ``templates/notices/<name>`` in ``language``; needs no request or app context."""
    return _environment(language).get_template(name).render(**context)


@lru_cache(maxsize=8)
def _catalog(language: str) -> Translations:
    """Return one language's catalog, read once per process (not once per subject line)."""
    return rendering.catalog(language)


def translate(language: str, message: str, **values: Any) -> str:
    """Return ``message`` (marked with ``N_`` where it is written) in ``language``."""
    text = _catalog(language).gettext(message)
    return text % values if values else text


def N_(message: str) -> str:  # noqa: N802 - the name pybabel extracts by default
    """Mark a message for extraction; ``translate`` looks it up later, in the person's language."""
    return message
