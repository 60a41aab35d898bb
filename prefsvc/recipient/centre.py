"""What a recipient can do from a link: one-click unsubscribe, undo, and the preference centre.

Links name a contact by its random public id; a link whose contact is gone, erased or
anonymised, or whose topic no longer exists, is as invalid as a forged one (``InvalidToken``,
never a reason), so a link never tells anyone whether an address is known.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Select, bindparam, insert, literal, or_, select
from sqlalchemy.orm import Session, scoped_session

from prefsvc.consent import changes as consent
from prefsvc.consent import suppression
from prefsvc.errors import InvalidInput, InvalidToken, RequestStateError, Suppressed
from prefsvc.mail import notices
from prefsvc.mail.tokens import Signer, SigninClaim
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    EventKind,
    Language,
    RightsKind,
    RightsRequest,
    RightsStatus,
    Subscription,
    SubscriptionStatus,
    Topic,
    UTCDateTime,
)
from prefsvc.privacy import access, erasure, rectification, register
from prefsvc.recipient.acknowledgements import OPTOUT
from prefsvc.settings import Settings

CHANNEL = "preference-centre"
PAUSE_MONTHS = (1, 3, 6)
LINKABLE = (ContactStatus.ACTIVE, ContactStatus.UNSUBSCRIBED)
# Whom a link may still open: not erased or anonymised, an address still held.
_CONTACTS = Contact.__table__
# OR of equalities rather than IN: an IN list is expanded again at every execution.
_LINKABLE = (
    or_(*(_CONTACTS.c.status == status for status in LINKABLE)),
    _CONTACTS.c.email.is_not(None),
)


def _linkable(session: Session, public_id: str) -> Contact:
    contact = session.scalar(select(Contact).where(Contact.public_id == public_id, *_LINKABLE))
    if contact is None:
        raise InvalidToken()
    return contact


def open_unsubscribe_link(session: Session, signer: Signer, token: str) -> tuple[Contact, Topic]:
    """Return the contact and topic an unsubscribe token names, or raise InvalidToken."""
    claim = signer.read_unsubscribe(token)
    topic = session.get(Topic, claim.topic_id)
    if topic is None:
        raise InvalidToken()
    return _linkable(session, claim.public_id), topic


@dataclass(frozen=True)
class UnsubscribeLink:
    """What the ``/u`` pages need of a valid unsubscribe link, read in one statement.

    Plain values, not ORM objects: mail scanners GET every link and mailbox providers POST
    one-click unsubscribes by the hundred a second while a campaign goes out.
    """

    contact_id: int
    public_id: str
    language: Language
    objected: bool
    topic_id: int
    topic_name: str
    subscribed: bool


def _link_query() -> Select:
    contacts_, topics, subscriptions = _CONTACTS, Topic.__table__, Subscription.__table__
    return (
        select(
            contacts_.c.id,
            contacts_.c.language,
            contacts_.c.status,
            topics.c.name,
            subscriptions.c.status.label("subscription"),
        )
        .select_from(contacts_)
        .join(topics, topics.c.id == bindparam("topic_id"))
        .outerjoin(
            subscriptions,
            (subscriptions.c.contact_id == contacts_.c.id)
            & (subscriptions.c.topic_id == topics.c.id),
        )
        .where(
            contacts_.c.public_id == bindparam("public_id"),
            *_LINKABLE,
        )
    )


_LINK = _link_query()  # built once: the /u pages are the busiest ones


def read_unsubscribe_link(session: Session, signer: Signer, token: str) -> UnsubscribeLink:
    """Return what an unsubscribe token names, or raise InvalidToken (as ``open_…`` does)."""
    claim = signer.read_unsubscribe(token)
    row = session.execute(_LINK, {"public_id": claim.public_id, "topic_id": claim.topic_id}).first()
    if row is None:
        raise InvalidToken()
    return _unsubscribe_link(claim.public_id, claim.topic_id, row)


def _link_and_leave_query() -> Select:
    """Read the link, leave, and hold the acknowledgement if anything changed: one statement.

    ``leaving`` calls a volatile function and is read twice, so PostgreSQL runs it once; the
    INSERT in ``held`` runs whether or not the outer query reads it.
    """
    link = _LINK.subquery("link")
    leaving = select(link, consent.leave_on_server(link.c.id).label("left")).cte("leaving")
    held = (
        insert(notices.OUTBOX)
        .from_select(
            ["kind", "contact_id", "params", "held_at"],
            select(
                literal(OPTOUT),
                leaving.c.id,
                bindparam("acknowledgement", type_=JSON),
                bindparam("now", type_=UTCDateTime()),
            ).where(leaving.c.left),
        )
        .cte("held")
    )
    return select(leaving).add_cte(held)


_LINK_AND_LEAVE = _link_and_leave_query()


def leave_by_link(
    session: Session, signer: Signer, token: str, *, channel: str, now: datetime, today: date
) -> tuple[UnsubscribeLink, bool]:
    """Leave the topic an unsubscribe token names; return the link and whether anything changed.

    The one-click POST. When something changed, the opt-out acknowledgement is held in the
    outbox in the same transaction (``notices.hold``): no broker call while the mailbox
    provider waits. On PostgreSQL the link is read, left and acknowledged in one statement. When the
    session has no transaction open, that statement commits by itself (autocommit): the
    ledger head is then locked only while the server runs it, not until this process, busy
    among many threads, gets round to sending COMMIT (unsubscribes arriving by the hundred
    a second queued behind that lock). Otherwise, and on SQLite (read, then
    ``consent.leave``), it runs in the session's transaction and the caller commits. The
    link shows the state before leaving.
    """
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        link = read_unsubscribe_link(session, signer, token)
        left = consent.leave(
            session, link.contact_id, link.topic_id, channel=channel, now=now, today=today
        )
        if left:
            notices.hold(session, OPTOUT, link.contact_id, _acknowledgement(link.topic_id), now=now)
        return link, left
    claim = signer.read_unsubscribe(token)
    params = consent.leave_parameters(claim.topic_id, channel=channel, now=now, today=today) | {
        "public_id": claim.public_id,
        "acknowledgement": _acknowledgement(claim.topic_id),
    }
    if _in_transaction(session):  # it may hold locks the statement needs: run inside it
        row = session.execute(_LINK_AND_LEAVE, params).first()
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            row = connection.execute(_LINK_AND_LEAVE, params).first()
    if row is None:
        raise InvalidToken()
    return _unsubscribe_link(claim.public_id, claim.topic_id, row), row.left


def _acknowledgement(topic_id: int) -> dict[str, Any]:
    return {"topic_ids": [topic_id]}


def _in_transaction(session: Session | scoped_session) -> bool:
    return (session() if isinstance(session, scoped_session) else session).in_transaction()


def _unsubscribe_link(public_id: str, topic_id: int, row: Any) -> UnsubscribeLink:
    return UnsubscribeLink(
        contact_id=row.id,
        public_id=public_id,
        language=row.language,
        objected=row.status is not ContactStatus.ACTIVE,
        topic_id=topic_id,
        topic_name=row.name,
        subscribed=row.subscription is SubscriptionStatus.SUBSCRIBED,
    )


def open_preferences_link(session: Session, signer: Signer, token: str) -> Contact:
    """Return the contact a preference-centre token names, or raise InvalidToken."""
    return _linkable(session, signer.read_preferences(token))


def open_signin_link(
    session: Session, signer: Signer, token: str, *, now: datetime
) -> tuple[Contact, SigninClaim]:
    """Return the contact of a sign-in token under 24 hours old, or raise InvalidToken."""
    claim = signer.read_signin(token, now=now)
    return _linkable(session, claim.public_id), claim


def has_objected(contact: Contact) -> bool:
    """Tell whether the person left all marketing mail: that is final, nothing re-adds them."""
    return contact.status is not ContactStatus.ACTIVE


def undo_unsubscribe(
    session: Session,
    contact: Contact,
    topic: Topic,
    *,
    suppression_key: str,
    now: datetime,
    today: date,
) -> bool:
    """Put the contact back on the topic they just left; refuse after an objection."""
    _refuse_if_suppressed(session, contact, suppression_key)
    return consent.subscribe(session, contact, topic, channel="undo", now=now, today=today)


def _refuse_if_suppressed(session: Session, contact: Contact, suppression_key: str) -> None:
    if has_objected(contact) or (
        contact.email and suppression.is_suppressed(session, suppression_key, contact.email)
    ):
        raise Suppressed("this address left all marketing mail")


@dataclass(frozen=True)
class TopicChoice:
    topic: Topic
    subscribed: bool


def topic_choices(session: Session, contact: Contact) -> list[TopicChoice]:
    """Return every topic, by name, with whether the contact receives it."""
    subscribed = {
        s.topic_id for s in contact.subscriptions if s.status is SubscriptionStatus.SUBSCRIBED
    }
    topics = session.scalars(select(Topic).order_by(Topic.name, Topic.id))
    return [TopicChoice(topic=t, subscribed=t.id in subscribed) for t in topics]


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
        _refuse_if_suppressed(session, contact, suppression_key)
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


# --- the person's rights, from the preference centre ------------------------------------

SELF_SERVICE = "self-service"
ASKABLE = (RightsKind.ACCESS, RightsKind.ERASURE)


def correct_details(
    session: Session,
    contact: Contact,
    changes: dict[str, str | None],
    *,
    settings: Settings,
    now: datetime,
    today: date,
) -> dict[str, tuple[str | None, str | None]]:
    """Correct name and organisation; return ``{field: (old, new)}`` of what changed.

    A change is registered as a rectification request, opened, verified (the link is the
    person's) and closed at once; nothing changed registers nothing.
    """
    changed = rectification.rectify(session, contact, changes, now=now, channel=CHANNEL)
    if not changed:
        return changed
    consent.touch_anchor(contact, today)
    request = register.open_request(
        session, RightsKind.RECTIFICATION, now=now, settings=settings, contact=contact
    )
    register.mark_verified(session, request, now=now, verification="preference-link")
    register.close(session, request, now=now, handled_by=SELF_SERVICE)
    return changed


def ask_for(
    session: Session,
    contact: Contact,
    kind: RightsKind | str,
    *,
    settings: Settings,
    now: datetime,
) -> RightsRequest:
    """Register a copy or erasure request, waiting for a fresh email confirmation.

    A request of the same kind still waiting is reused, so repeated clicks add no entries.
    """
    kind = RightsKind(kind)
    if kind not in ASKABLE:
        raise InvalidInput("kind", "must be access or erasure")
    waiting = session.scalar(
        select(RightsRequest)
        .where(
            RightsRequest.contact_id == contact.id,
            RightsRequest.kind == kind,
            RightsRequest.status == RightsStatus.RECEIVED,
        )
        .order_by(RightsRequest.id)
        .limit(1)
    )
    if waiting is not None:
        return waiting  # asking again sends a new link for the same register entry
    return register.open_request(session, kind, now=now, settings=settings, contact=contact)


def confirm_request(
    session: Session, contact: Contact, request_id: int, *, now: datetime
) -> RightsRequest:
    """Mark the person's own waiting copy or erasure request as verified by the email link."""
    request = waiting_request(session, contact, request_id)
    if request is None:
        raise RequestStateError("no such request waiting for confirmation")
    return register.mark_verified(session, request, now=now, verification="email-link")


def waiting_request(
    session: Session, contact: Contact, request_id: int | None
) -> RightsRequest | None:
    """Return the copy or erasure request a sign-in link confirms, if it still waits."""
    if request_id is None:
        return None
    request = session.get(RightsRequest, request_id)
    if request is None or request.contact_id != contact.id or request.kind not in ASKABLE:
        return None
    return request if request.status is RightsStatus.RECEIVED else None


def fulfil(
    session: Session, request: RightsRequest, contact: Contact, *, settings: Settings, now: datetime
) -> dict | erasure.ErasureResult:
    """Carry out a verified copy or erasure request and close it in the register."""
    if request.status is not RightsStatus.VERIFIED:
        raise RequestStateError(f"request {request.id} is not verified")
    if request.kind is RightsKind.ACCESS:
        result: dict | erasure.ErasureResult = access.export(
            session, contact, settings=settings, now=now
        )
    else:
        result = erasure.erase(session, contact, settings=settings, now=now, reason=SELF_SERVICE)
    register.close(session, request, now=now, handled_by=SELF_SERVICE)
    return result


def history(session: Session, contact: Contact) -> list[tuple[ConsentEvent, str | None]]:
    """Return the contact's consent events, newest first, with the topic name if any."""
    rows = session.execute(
        select(ConsentEvent, Topic.name)
        .outerjoin(Topic, Topic.id == ConsentEvent.topic_id)
        .where(ConsentEvent.contact_id == contact.id)
        .order_by(ConsentEvent.seq.desc())
    )
    return [(event, name) for event, name in rows]
