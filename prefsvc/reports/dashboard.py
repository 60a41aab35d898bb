"""The figures on the admin dashboard: who we may mail, whose window ends soon, what is late.

Counted in the database (a handful of grouped queries), never by loading contacts. Who we may
mail is counted with the audience's own rule for today (``audience.exclusion_reason``), so a
topic's figure is the audience a campaign to it would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prefsvc.campaigns import audience, campaigns
from prefsvc.consent import window
from prefsvc.models import (
    Campaign,
    Contact,
    ContactStatus,
    RightsRequest,
    Subscription,
    Topic,
)
from prefsvc.privacy import register

EXPIRY_HORIZON_DAYS = 60
EXPIRING_SHOWN = 10


@dataclass(frozen=True)
class Expiring:
    public_id: str
    email: str | None
    expires_on: date


@dataclass
class Dashboard:
    contacts: int
    by_language: dict[str, int]
    by_topic: list[tuple[str, str, int]]  # slug, name, audience of a campaign to it today
    expiring_count: int
    expiring: list[Expiring]
    overdue: list[RightsRequest]
    recent: list[Campaign] = field(default_factory=list)


def figures(session: Session, *, today: date, years: int, language: str = "nl") -> Dashboard:
    """Count whom we may mail by language and topic, windows ending soon, overdue requests.

    Topics are named in ``language`` (the staff page's).
    """
    active = Contact.status == ContactStatus.ACTIVE
    by_language = {
        language.value: n
        for language, n in session.execute(
            select(Contact.language, func.count())
            .where(audience.mailable(today, years))
            .group_by(Contact.language)
        )
    }
    reached = (
        select(Subscription.topic_id, func.count().label("n"))
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(audience.exclusion_reason(today, years).is_(None))
        .group_by(Subscription.topic_id)
        .subquery()
    )
    by_topic = [
        (topic.slug, topic.name_in(language), n or 0)
        for topic, n in session.execute(
            select(Topic, reached.c.n)
            .outerjoin(reached, reached.c.topic_id == Topic.id)
            .order_by(Topic.slug)
        )
    ]
    # Open today (anchor after the last expired one) and ended by the horizon.
    still_open = Contact.window_anchor > window.last_expired_anchor(today, years)
    ends_soon = Contact.window_anchor <= window.last_expired_anchor(
        today + timedelta(days=EXPIRY_HORIZON_DAYS), years
    )
    expiring_query = select(Contact).where(active, still_open, ends_soon)
    expiring_count = session.scalar(select(func.count()).select_from(expiring_query.subquery()))
    expiring = [
        Expiring(c.public_id, c.email, window.expires_on(c.window_anchor, years))
        for c in session.scalars(
            expiring_query.order_by(Contact.window_anchor, Contact.id).limit(EXPIRING_SHOWN)
        )
    ]
    return Dashboard(
        contacts=sum(by_language.values()),
        by_language=by_language,
        by_topic=by_topic,
        expiring_count=expiring_count or 0,
        expiring=expiring,
        overdue=register.overdue(session, today),
        recent=campaigns.recent(session, limit=8),
    )
