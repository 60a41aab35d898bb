"""Confirmation mails to the person after an opt-out or a correction of their details.

Belgian practice asks that an opt-out is acknowledged; the privacy statement promises an
overview of a correction. Both are transactional: no marketing, and no link but the one to the
preference centre. They are written in the contact's language at the moment they are built.
"""

from __future__ import annotations

import json
from typing import Any

from flask import render_template
from flask_babel import force_locale, gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc import notices
from prefsvc.models import (
    Contact,
    ContactStatus,
    RightsKind,
    RightsRequest,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from prefsvc.notices import Notice
from prefsvc.settings import Settings

OPTOUT = "optout_ack"
DETAILS_CHANGED = "details_changed"


def preferences_url(settings: Settings, contact: Contact) -> str:
    from prefsvc import sending

    return f"{settings.base_url}/p/{sending.signer(settings).preferences_token(contact.public_id)}"


def build_optout(
    session: Session, contact: Contact, settings: Settings, params: dict[str, Any]
) -> Notice | None:
    """Confirm leaving some topics (``topic_ids``) or everything (``everything``).

    Only what still holds when the mail is built is confirmed: a topic taken back with undo
    in the meantime is left out, and nothing is sent if nothing is left.
    """
    everything = bool(params.get("everything"))
    if everything and contact.status is ContactStatus.ACTIVE:
        return None
    ids = [int(i) for i in params.get("topic_ids", [])]
    topics = list(
        session.scalars(
            select(Topic)
            .join(Subscription, Subscription.topic_id == Topic.id)
            .where(
                Topic.id.in_(ids),
                Subscription.contact_id == contact.id,
                Subscription.status == SubscriptionStatus.UNSUBSCRIBED,
            )
            .order_by(Topic.name)
        )
    )
    if not everything and not topics:
        return None
    with force_locale(contact.language.value):
        text = render_template(
            "mail/optout_ack.txt",
            contact=contact,
            everything=everything,
            topics=[t.name for t in topics],
            preferences_url=preferences_url(settings, contact),
        )
        return Notice(subject=gettext("Your unsubscription is confirmed"), text=text)


def build_details_changed(
    session: Session, contact: Contact, settings: Settings, params: dict[str, Any]
) -> Notice | None:
    """List a correction as old -> new; the values come from the rights register's note."""
    request = session.get(RightsRequest, int(params.get("request_id", 0)))
    if request is None or request.contact_id != contact.id or not request.note:
        return None
    if request.kind is not RightsKind.RECTIFICATION:
        return None
    changes = json.loads(request.note).get("changes", {})
    with force_locale(contact.language.value):
        labels = {
            "first_name": gettext("First name"),
            "last_name": gettext("Last name"),
            "organisation": gettext("Organisation"),
            "language": gettext("Language"),
        }
        empty = gettext("(empty)")
        rows = [
            (labels.get(name, name), old or empty, new or empty)
            for name, (old, new) in sorted(changes.items())
        ]
        text = render_template(
            "mail/details_changed.txt",
            contact=contact,
            rows=rows,
            preferences_url=preferences_url(settings, contact),
        )
        return Notice(subject=gettext("Your details have been corrected"), text=text)


def rectification_note(changes: dict[str, tuple[str | None, str | None]]) -> str:
    """Keep old and new values with the register entry until the confirmation is built."""
    return json.dumps({"changes": {k: list(v) for k, v in changes.items()}}, ensure_ascii=False)


def register() -> None:
    notices.register(OPTOUT, build_optout)
    notices.register(DETAILS_CHANGED, build_details_changed)
