"""Who receives a campaign on a given day, and why the others do not.

The rule lives in one SQL expression (``exclusion_reason``) used by the fan-out and by the
preview counts, and in one Python function (``reason_for``) used to re-check each contact just
before their batch goes, so changes made while a campaign is sending are honoured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from prefsvc.consent import window
from prefsvc.models import Campaign, Contact, ContactStatus, Subscription, SubscriptionStatus

SUPPRESSED = "suppressed"
UNSUBSCRIBED = "unsubscribed"
WINDOW_EXPIRED = "window_expired"
PAUSED = "paused"
# Mail that came back (prefsvc.inbound.policy): the address bounced, or the person complained.
BOUNCED = "bounced"
COMPLAINED = "complained"
REASONS = (SUPPRESSED, UNSUBSCRIBED, WINDOW_EXPIRED, PAUSED, BOUNCED, COMPLAINED)


@dataclass(frozen=True)
class AudienceCount:
    audience: int
    excluded: dict[str, int]


def exclusion_reason(on: date, years: int) -> ColumnElement[str | None]:
    """Return the SQL expression naming why a subscriber is excluded on ``on`` (NULL: eligible)."""
    last_expired = window.last_expired_anchor(on, years)
    return case(
        (
            and_(Contact.complained_at.is_not(None), Contact.status == ContactStatus.UNSUBSCRIBED),
            literal(COMPLAINED),
        ),
        (or_(Contact.status != ContactStatus.ACTIVE, Contact.email.is_(None)), literal(SUPPRESSED)),
        (Contact.bounced_at.is_not(None), literal(BOUNCED)),
        (Subscription.status == SubscriptionStatus.UNSUBSCRIBED, literal(UNSUBSCRIBED)),
        (Contact.window_anchor <= last_expired, literal(WINDOW_EXPIRED)),
        (and_(Contact.paused_until.is_not(None), Contact.paused_until > on), literal(PAUSED)),
        else_=literal(None),
    )


class Mailable(Protocol):
    """What the rule reads of a contact: a model or a selected row."""

    status: ContactStatus
    email: str | None
    window_anchor: date
    paused_until: date | None
    bounced_at: datetime | None
    complained_at: datetime | None


def reason_for(
    contact: Mailable, subscription_status: SubscriptionStatus | None, *, on: date, years: int
) -> str | None:
    """Return why this contact may not be mailed on ``on`` (None: they may); mirrors the SQL."""
    if contact.complained_at is not None and contact.status is ContactStatus.UNSUBSCRIBED:
        return COMPLAINED
    if contact.status is not ContactStatus.ACTIVE or contact.email is None:
        return SUPPRESSED
    if contact.bounced_at is not None:
        return BOUNCED
    if subscription_status is not SubscriptionStatus.SUBSCRIBED:
        return UNSUBSCRIBED
    if not window.is_open(contact.window_anchor, years, on):
        return WINDOW_EXPIRED
    if contact.paused_until is not None and contact.paused_until > on:
        return PAUSED
    return None


def candidates(campaign: Campaign, *, on: date, years: int) -> Select:
    """Select (contact id, exclusion reason) for everyone with a subscription row for the topic."""
    return (
        select(Contact.id, exclusion_reason(on, years).label("reason"))
        .join(Subscription, Subscription.contact_id == Contact.id)
        .where(Subscription.topic_id == campaign.topic_id)
    )


def count(session: Session, campaign: Campaign, *, on: date, years: int) -> AudienceCount:
    """Count who would receive the campaign on ``on`` and why the others would not."""
    inner = candidates(campaign, on=on, years=years).subquery()
    rows = session.execute(select(inner.c.reason, func.count()).group_by(inner.c.reason)).all()
    excluded = {reason: n for reason, n in rows if reason is not None}
    audience = sum(n for reason, n in rows if reason is None)
    return AudienceCount(audience=audience, excluded=excluded)
