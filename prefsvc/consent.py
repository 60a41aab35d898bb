"""Subscribe, unsubscribe, object, pause: every change appends to the consent ledger.

Changes the person makes themselves move the marketing-window anchor to that day
(CONTRACT §7); sending, opening or clicking never does. Repeating a change is harmless and
recorded once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc import ledger, suppression, window
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    EventKind,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
    Topic,
)


def record(
    session: Session,
    contact: Contact,
    kind: EventKind,
    *,
    channel: str,
    now: datetime,
    topic: Topic | None = None,
    detail: dict[str, Any] | None = None,
) -> ConsentEvent:
    """Append one event to the hash-chained ledger (``detail`` must hold no personal data)."""
    return ledger.append(
        session, contact, kind, channel=channel, now=now, topic=topic, detail=detail
    )


def subscription(
    session: Session, contact: Contact, topic: Topic, *, lock: bool = False
) -> Subscription | None:
    """Return the contact's subscription row for the topic; ``lock`` holds it until commit."""
    query = select(Subscription).where(
        Subscription.contact_id == contact.id, Subscription.topic_id == topic.id
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def touch_anchor(contact: Contact, today: date) -> None:
    """Move the window anchor to ``today`` after a choice the person made (never backwards)."""
    contact.window_anchor = window.later_anchor(contact.window_anchor, today)


def subscribe(
    session: Session,
    contact: Contact,
    topic: Topic,
    *,
    channel: str,
    now: datetime,
    today: date,
    by_person: bool = True,
) -> bool:
    """Subscribe the contact to the topic; return False when nothing changed."""
    current = subscription(session, contact, topic)
    if current is not None and current.status is SubscriptionStatus.SUBSCRIBED:
        return False
    kind = EventKind.SUBSCRIBED
    if current is None:
        session.add(
            Subscription(contact=contact, topic=topic, status=SubscriptionStatus.SUBSCRIBED)
        )
    else:
        current.status = SubscriptionStatus.SUBSCRIBED
        kind = EventKind.RESUBSCRIBED
    record(session, contact, kind, channel=channel, now=now, topic=topic)
    if by_person:
        touch_anchor(contact, today)
    return True


def unsubscribe(
    session: Session,
    contact: Contact,
    topic: Topic,
    *,
    channel: str,
    now: datetime,
    today: date,
) -> bool:
    """Unsubscribe the contact from one topic; return False when they already were.

    The subscription row is locked first: two one-click POSTs of the same link at the same
    moment (mail scanners, double clicks) then record one ledger event, not two.
    """
    current = subscription(session, contact, topic, lock=True)
    if current is None:
        current = Subscription(contact=contact, topic=topic, status=SubscriptionStatus.UNSUBSCRIBED)
        session.add(current)
    elif current.status is SubscriptionStatus.UNSUBSCRIBED:
        return False
    current.status = SubscriptionStatus.UNSUBSCRIBED
    record(session, contact, EventKind.UNSUBSCRIBED, channel=channel, now=now, topic=topic)
    touch_anchor(contact, today)
    return True


def object_to_all(
    session: Session,
    contact: Contact,
    *,
    channel: str,
    now: datetime,
    suppression_key: str,
) -> bool:
    """Record an objection to all direct marketing: every topic off, address suppressed for good."""
    if contact.status is not ContactStatus.ACTIVE:
        return False
    for sub in contact.subscriptions:
        sub.status = SubscriptionStatus.UNSUBSCRIBED
    contact.status = ContactStatus.UNSUBSCRIBED
    if contact.email:
        suppression.add(session, suppression_key, contact.email, SuppressionReason.OBJECTION)
    record(session, contact, EventKind.OBJECTION, channel=channel, now=now)
    return True


def enrol(
    session: Session,
    contact: Contact,
    topic: Topic,
    *,
    channel: str,
    now: datetime,
    suppression_key: str,
) -> bool:
    """Subscribe a contact on a source system's word (not the person's own click).

    Only the person can undo their own unsubscribe or objection, so a topic they left, a
    contact that objected or an erased address raises ``Suppressed``. The window anchor does
    not move. Return False when the contact already receives the topic.
    """
    from prefsvc.errors import Suppressed

    if contact.status is not ContactStatus.ACTIVE or not contact.email:
        raise Suppressed("this contact objected or was erased; only they can subscribe again")
    if suppression.is_suppressed(session, suppression_key, contact.email):
        raise Suppressed("this address is on the suppression list")
    current = subscription(session, contact, topic)
    if current is not None and current.status is SubscriptionStatus.UNSUBSCRIBED:
        raise Suppressed("the contact unsubscribed from this topic; only they can subscribe again")
    return subscribe(
        session, contact, topic, channel=channel, now=now, today=now.date(), by_person=False
    )
