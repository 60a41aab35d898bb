"""The preference centre: choose topics and language, pause, resume, see the history.

Each change is the person's own choice: its own ledger event, and it moves the window
anchor. After an objection (leaving all marketing mail) or with a suppressed address,
nothing adds a topic back.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.consent import changes as consent
from prefsvc.consent import suppression
from prefsvc.errors import InvalidInput, Suppressed
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    EventKind,
    Language,
    SubscriptionStatus,
    Topic,
)
from prefsvc.people import topics

CHANNEL = "preference-centre"
PAUSE_MONTHS = (1, 3, 6)


def has_objected(contact: Contact) -> bool:
    """Tell whether the person left all marketing mail: that is final, nothing re-adds them."""
    return contact.status is not ContactStatus.ACTIVE


def refuse_if_suppressed(session: Session, contact: Contact, suppression_key: str) -> None:
    """Raise ``Suppressed`` when a topic may not be added back (objection or suppression)."""
    if has_objected(contact) or (
        contact.email and suppression.is_suppressed(session, suppression_key, contact.email)
    ):
        raise Suppressed("this address left all marketing mail")


@dataclass(frozen=True)
class TopicChoice:
    topic: Topic
    subscribed: bool


def topic_choices(
    session: Session, contact: Contact, language: str | None = None
) -> list[TopicChoice]:
    """Return every topic with whether the contact receives it, by its name in ``language``.

    ``language`` is the page's (the contact's own unless they picked another on the page).
    """
    subscribed = {
        s.topic_id for s in contact.subscriptions if s.status is SubscriptionStatus.SUBSCRIBED
    }
    found = topics.by_name(list(session.scalars(select(Topic))), language or contact.language)
    return [TopicChoice(topic=t, subscribed=t.id in subscribed) for t in found]


@dataclass
class Changes:
    """What a preference-centre save changed (empty when the form was sent unchanged)."""

    subscribed: list[Topic] = field(default_factory=list)
    unsubscribed: list[Topic] = field(default_factory=list)
    language: Language | None = None

    def __bool__(self) -> bool:
        return bool(self.subscribed or self.unsubscribed or self.language)


def save(
    session: Session,
    contact: Contact,
    *,
    topic_ids: Collection[int],
    language: str,
    suppression_key: str,
    now: datetime,
    today: date,
) -> Changes:
    """Apply the preference-centre form: exactly these topics, in this language.

    Each change is its own ledger event and, being the person's own choice, moves the
    window anchor; topics cannot be added back after an objection.
    """
    try:
        chosen_language = Language(language)
    except ValueError:
        raise InvalidInput("language", "must be nl, fr or en") from None
    wanted = set(topic_ids)
    changes = Changes()
    choices = topic_choices(session, contact)
    if wanted - {c.topic.id for c in choices}:
        raise InvalidInput("topics", "names a topic that does not exist")
    if any(not c.subscribed and c.topic.id in wanted for c in choices):
        refuse_if_suppressed(session, contact, suppression_key)
    for choice in choices:
        if choice.topic.id in wanted and not choice.subscribed:
            consent.subscribe(session, contact, choice.topic, channel=CHANNEL, now=now, today=today)
            changes.subscribed.append(choice.topic)
        elif choice.topic.id not in wanted and choice.subscribed:
            consent.unsubscribe(
                session, contact, choice.topic, channel=CHANNEL, now=now, today=today
            )
            changes.unsubscribed.append(choice.topic)
    if chosen_language is not contact.language:
        contact.language = chosen_language
        consent.record(
            session,
            contact,
            EventKind.PREFERENCES,
            channel=CHANNEL,
            now=now,
            detail={"language": chosen_language.value},
        )
        consent.touch_anchor(contact, today)
        changes.language = chosen_language
    return changes


def add_months(day: date, months: int) -> date:
    """Return the same day ``months`` later, or that month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def pause(session: Session, contact: Contact, months: int, *, now: datetime, today: date) -> date:
    """Stop all marketing mail for 1, 3 or 6 months; return the first day mail may go again."""
    if months not in PAUSE_MONTHS:
        raise InvalidInput("months", "must be 1, 3 or 6")
    until = add_months(today, months)
    contact.paused_until = until
    consent.record(
        session,
        contact,
        EventKind.PAUSED,
        channel=CHANNEL,
        now=now,
        detail={"months": months, "until": until.isoformat()},
    )
    consent.touch_anchor(contact, today)
    return until


def resume(session: Session, contact: Contact, *, now: datetime, today: date) -> bool:
    """End a pause now; return False when mail was not paused."""
    if contact.paused_until is None or contact.paused_until <= today:
        return False
    contact.paused_until = None
    consent.record(
        session, contact, EventKind.PAUSED, channel=CHANNEL, now=now, detail={"until": None}
    )
    consent.touch_anchor(contact, today)
    return True


def is_paused(contact: Contact, today: date) -> bool:
    return contact.paused_until is not None and contact.paused_until > today


def history(
    session: Session, contact: Contact, language: str | None = None
) -> list[tuple[ConsentEvent, str | None]]:
    """Return the contact's consent events, newest first, with the topic's name in ``language``.

    ``language`` is the page's (the contact's own unless they picked another on the page).
    """
    rows = session.execute(
        select(ConsentEvent, Topic)
        .outerjoin(Topic, Topic.id == ConsentEvent.topic_id)
        .where(ConsentEvent.contact_id == contact.id)
        .order_by(ConsentEvent.seq.desc())
    )
    language = language or contact.language
    return [(event, topic.name_in(language) if topic else None) for event, topic in rows]
