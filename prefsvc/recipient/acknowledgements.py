"""The confirmation mail after an opt-out, in the person's language.

Belgian practice asks that an opt-out is acknowledged. It is transactional: no marketing, and
no link but the one to the preference centre. (A correction of details is confirmed by
``rectification.NOTICE``.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.mail import kit, notices
from prefsvc.mail.notices import N_, Notice
from prefsvc.models import (
    Contact,
    ContactStatus,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from prefsvc.settings import Settings

OPTOUT = "optout_ack"


def preferences_url(settings: Settings, contact: Contact) -> str:
    """Return the contact's preference-centre link, the one link an acknowledgement holds."""
    return f"{settings.base_url}/p/{kit.signer(settings).preferences_token(contact.public_id)}"


def build_optout(
    session: Session, contact: Contact, settings: Settings, params: dict[str, Any], *, now: datetime
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
        )
    )
    if not everything and not topics:
        return None
    language = contact.language.value
    text = notices.render(
        "optout_ack.txt",
        language,
        contact=contact,
        everything=everything,
        topics=sorted((t.name_in(language) for t in topics), key=str.casefold),
        preferences_url=preferences_url(settings, contact),
    )
    return Notice(
        subject=notices.translate(language, N_("Your unsubscription is confirmed")), text=text
    )
