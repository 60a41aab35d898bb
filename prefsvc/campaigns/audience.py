"""Who receives a campaign on a given day, and why the others do not.

The rule lives in one SQL expression (``exclusion_reason``) used by the fan-out, the preview
counts and the dashboard, and in one Python function (``reason_for``) used to re-check each
contact just before their batch goes, so changes made while a campaign is sending are honoured.
A campaign without a fallback reaches only the languages it was written in (``served``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from prefsvc.consent import window
from prefsvc.models import (
    Campaign,
    Contact,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    Language,
    Subscription,
    SubscriptionStatus,
)

SUPPRESSED = "suppressed"
UNSUBSCRIBED = "unsubscribed"
WINDOW_EXPIRED = "window_expired"
PAUSED = "paused"
NO_VARIANT = "no_variant_in_language"
# Mail that came back (prefsvc.inbound.policy): the address bounced, or the person complained.
BOUNCED = "bounced"
COMPLAINED = "complained"
REASONS = (SUPPRESSED, UNSUBSCRIBED, WINDOW_EXPIRED, PAUSED, BOUNCED, COMPLAINED, NO_VARIANT)


@dataclass(frozen=True)
class AudienceCount:
    audience: int
    excluded: dict[str, int]


def served(campaign: Campaign) -> frozenset[Language] | None:
    """Return the contact languages a campaign reaches; None: all (it has a fallback)."""
    if campaign.fallback_language is not None:
        return None
    return frozenset(v.language for v in campaign.variants)


def exclusion_reason(
    on: date,
    years: int,
    languages: Collection[Language] | None = None,
    *,
    subscribed: bool = True,
) -> ColumnElement[str | None]:
    """Return the SQL expression naming why a subscriber is excluded on ``on`` (NULL: eligible).

    ``languages``: those the campaign reaches (None: all). ``subscribed=False`` leaves out the
    subscription, for figures about contacts rather than one topic's subscribers.
    """
    last_expired = window.last_expired_anchor(on, years)
    rules = [
        (
            and_(Contact.complained_at.is_not(None), Contact.status == ContactStatus.UNSUBSCRIBED),
            literal(COMPLAINED),
        ),
        (or_(Contact.status != ContactStatus.ACTIVE, Contact.email.is_(None)), literal(SUPPRESSED)),
        (Contact.bounced_at.is_not(None), literal(BOUNCED)),
    ]
    if subscribed:
        rules.append(
            (Subscription.status == SubscriptionStatus.UNSUBSCRIBED, literal(UNSUBSCRIBED))
        )
    rules += [
        (Contact.window_anchor <= last_expired, literal(WINDOW_EXPIRED)),
        (and_(Contact.paused_until.is_not(None), Contact.paused_until > on), literal(PAUSED)),
    ]
    if languages is not None:
        rules.append((Contact.language.not_in(sorted(languages)), literal(NO_VARIANT)))
    return case(*rules, else_=literal(None))


class Mailable(Protocol):
    """What the rule reads of a contact: a model or a selected row."""

    status: ContactStatus
    email: str | None
    window_anchor: date
    paused_until: date | None
    language: Language
    bounced_at: datetime | None
    complained_at: datetime | None


def reason_for(
    contact: Mailable,
    subscription_status: SubscriptionStatus | None,
    *,
    on: date,
    years: int,
    languages: Collection[Language] | None = None,
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
    if languages is not None and contact.language not in languages:
        return NO_VARIANT
    return None


def candidates(campaign: Campaign, *, on: date, years: int) -> Select:
    """Select (contact id, exclusion reason) for everyone with a subscription row for the topic."""
    return (
        select(
            Contact.id,
            Contact.language,
            exclusion_reason(on, years, served(campaign)).label("reason"),
        )
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


def by_language(
    session: Session, campaign: Campaign, *, on: date, years: int
) -> dict[str, dict[str, int]]:
    """Count, per contact language, who would get which variant on ``on``.

    ``{contact language: {variant language or "excluded": n}}``: the audience, and those left
    out because the campaign has no variant in their language and no fallback.
    """
    inner = candidates(campaign, on=on, years=years).subquery()
    rows = session.execute(
        select(inner.c.language, inner.c.reason, func.count())
        .where(or_(inner.c.reason.is_(None), inner.c.reason == NO_VARIANT))
        .group_by(inner.c.language, inner.c.reason)
    ).all()
    return variant_counts(campaign, [(language, reason is None, n) for language, reason, n in rows])


def sent_by_language(session: Session, campaign: Campaign) -> dict[str, dict[str, int]]:
    """Count ``by_language`` of a launched campaign from its delivery rows (see there)."""
    receives = Delivery.status != DeliveryStatus.EXCLUDED
    rows = session.execute(
        select(Contact.language, receives, func.count())
        .join(Delivery, Delivery.contact_id == Contact.id)
        .where(
            Delivery.campaign_id == campaign.id,
            or_(receives, Delivery.reason == NO_VARIANT),
        )
        .group_by(Contact.language, receives)
    ).all()
    return variant_counts(campaign, [(language, bool(r), n) for language, r, n in rows])


def variant_counts(
    campaign: Campaign, rows: list[tuple[Language, bool, int]]
) -> dict[str, dict[str, int]]:
    """Shape ``(contact language, receives, n)`` rows as ``by_language`` (see there)."""
    counts: dict[str, dict[str, int]] = {}
    for language, receives, n in rows:
        variant = campaign.variant_sent_to(language) if receives else None
        key = variant.language.value if variant is not None else "excluded"
        per = counts.setdefault(language.value, {})
        per[key] = per.get(key, 0) + n
    return {lang: dict(sorted(per.items())) for lang, per in sorted(counts.items())}


def mailable(on: date, years: int) -> ColumnElement[bool]:
    """Return the SQL condition: a campaign to a topic this contact follows may reach them.

    The same rule as ``exclusion_reason`` without the subscription, for the dashboard.
    """
    return exclusion_reason(on, years, subscribed=False).is_(None)
