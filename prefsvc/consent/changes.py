"""Subscribe, unsubscribe, object, pause: every change appends to the consent ledger.

Changes the person makes themselves move the marketing-window anchor to that day
(CONTRACT §7); sending, opening or clicking never does. Repeating a change is harmless and
recorded once.

Leaving a topic is one rule with two halves, both in this module: ``leave_in_steps`` (Core
statements, any database; SQLite takes it) and ``consent_leave``, its PL/pgSQL twin in
``LEAVE_FUNCTION``, which PostgreSQL runs in one round trip. Every unsubscribe goes through
``leave`` (``unsubscribe``, the one-click link and the preference centre, which may also put
``leave_on_server`` into its own statement). tests/consent/test_changes.py proves both halves
leave the same rows. ``attach_server_ddl`` has ``create_all`` build the function (tests);
migration 0005 holds the copy an upgrade creates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    ColumnElement,
    Date,
    MetaData,
    Text,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.event import contains, listen
from sqlalchemy.orm import Session

from prefsvc.consent import ledger, suppression, window
from prefsvc.errors import Suppressed
from prefsvc.models import (
    Contact,
    ContactStatus,
    EventKind,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
    Topic,
    UTCDateTime,
)

_CONTACTS = Contact.__table__
_SUBSCRIPTIONS = Subscription.__table__


def record(
    session: Session,
    contact: Contact,
    kind: EventKind,
    *,
    channel: str,
    now: datetime,
    topic: Topic | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event to the hash-chained ledger (``detail`` must hold no personal data)."""
    if contact.id is None:
        session.flush()
    ledger.append(
        session,
        contact.id,
        kind,
        channel=channel,
        now=now,
        topic_id=topic.id if topic is not None else None,
        detail=detail,
    )


def subscription(session: Session, contact: Contact, topic: Topic) -> Subscription | None:
    return session.scalar(
        select(Subscription).where(
            Subscription.contact_id == contact.id, Subscription.topic_id == topic.id
        )
    )


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
    detail: dict[str, Any] | None = None,
) -> bool:
    """Subscribe the contact to the topic; return False when nothing changed.

    ``detail`` goes into the ledger event (e.g. the basis and consent text of a sign-up).
    """
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
    record(session, contact, kind, channel=channel, now=now, topic=topic, detail=detail)
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

    ``leave`` does the work by id; the loaded objects are then expired, so they show the
    change when next read.
    """
    if contact.id is None or topic.id is None:
        session.flush()
    left = leave(session, contact.id, topic.id, channel=channel, now=now, today=today)
    if left:
        session.expire(contact, ["window_anchor", "updated_at", "subscriptions"])
        for held in list(session.identity_map.values()):
            if (
                isinstance(held, Subscription)
                and held.contact_id == contact.id
                and held.topic_id == topic.id
            ):
                session.expire(held)
    return left


def leave(
    session: Session,
    contact_id: int,
    topic_id: int,
    *,
    channel: str,
    now: datetime,
    today: date,
) -> bool:
    """Unsubscribe a contact from a topic by id; return False when they already were.

    Core statements and no ORM objects, because one-click unsubscribes arrive by the hundred
    a second while a campaign goes out; on PostgreSQL one function call (``consent_leave``),
    so the locks are held for one round trip.
    """
    if session.get_bind().dialect.name == "postgresql":
        return leave_in_one_call(
            session, contact_id, topic_id, channel=channel, now=now, today=today
        )
    return leave_in_steps(session, contact_id, topic_id, channel=channel, now=now, today=today)


def leave_in_steps(
    session: Session,
    contact_id: int,
    topic_id: int,
    *,
    channel: str,
    now: datetime,
    today: date,
) -> bool:
    """The rule of ``leave`` in Python, one statement a step: the twin of ``consent_leave``.

    Locks are taken in the order every writer keeps (contact row, subscription, ledger head),
    and the subscription is changed by one upsert that only touches a row not yet
    unsubscribed: two POSTs of the same link at the same moment (mail scanners, double
    clicks) record one ledger event, not two.
    """
    params = {"contact_id": contact_id, "topic_id": topic_id, "now": now, "today": today}
    session.execute(_LOCK_CONTACT, params)
    upsert = _LEAVE_UPSERT[session.get_bind().dialect.name]
    if session.execute(upsert, params).first() is None:
        return False
    session.execute(_TOUCH_ANCHOR, params)
    event = ledger.NewEvent(contact_id, EventKind.UNSUBSCRIBED, channel, topic_id)
    ledger.append_many(session, [event], now=now)  # ``append`` in Python, on any database
    return True


def leave_in_one_call(
    session: Session,
    contact_id: int,
    topic_id: int,
    *,
    channel: str,
    now: datetime,
    today: date,
) -> bool:
    """``leave`` as one call of the PL/pgSQL ``consent_leave`` (PostgreSQL only)."""
    return session.execute(
        _LEAVE_ON_SERVER,
        leave_parameters(topic_id, channel=channel, now=now, today=today)
        | {"contact_id": contact_id},
    ).scalar_one()


def _leave_upsert(insert: Any) -> Any:
    """INSERT … ON CONFLICT that marks the row unsubscribed and returns it only if it changed."""
    upsert = insert(_SUBSCRIPTIONS).values(
        contact_id=bindparam("contact_id"),
        topic_id=bindparam("topic_id"),
        status=SubscriptionStatus.UNSUBSCRIBED,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    return upsert.on_conflict_do_update(
        index_elements=["contact_id", "topic_id"],
        set_={"status": upsert.excluded.status, "updated_at": upsert.excluded.updated_at},
        where=_SUBSCRIPTIONS.c.status != SubscriptionStatus.UNSUBSCRIBED,
    ).returning(_SUBSCRIPTIONS.c.id)


# Built once: constructing a statement costs more than executing a cached one.
_ANCHOR = _CONTACTS.c.window_anchor
_TODAY = bindparam("today", type_=Date)
_LOCK_CONTACT = (
    select(_CONTACTS.c.id).where(_CONTACTS.c.id == bindparam("contact_id")).with_for_update()
)
_LEAVE_UPSERT = {
    "sqlite": _leave_upsert(sqlite.insert),
    "postgresql": _leave_upsert(postgresql.insert),  # consent_leave's step, in a test
}


def leave_on_server(contact_id: ColumnElement[int]) -> Any:
    """The PostgreSQL ``consent_leave`` call for one contact, to put in a statement.

    The contact id is an expression, so a statement that finds the contact can leave in the
    same round trip; the other values are bind parameters, given by ``leave_parameters``.
    The ledger text before ``seq`` is joined in SQL around the contact id.
    """
    before = (
        bindparam("head", type_=Text) + cast(contact_id, Text) + bindparam("middle", type_=Text)
    )
    return func.consent_leave(
        contact_id,
        bindparam("topic_id"),
        bindparam("channel"),
        bindparam("now", type_=UTCDateTime()),
        _TODAY,
        before,
        bindparam("after"),
    )


def leave_parameters(topic_id: int, *, channel: str, now: datetime, today: date) -> dict[str, Any]:
    """Return the bind parameters of ``leave_on_server`` (all but the contact's)."""
    head, middle, after = ledger.around_contact_and_seq(
        EventKind.UNSUBSCRIBED, channel, topic_id, detail={}, occurred_at=now
    )
    return {
        "topic_id": topic_id,
        "channel": channel,
        "now": now,
        "today": today,
        "head": head,
        "middle": middle,
        "after": after,
    }


_LEAVE_ON_SERVER = select(leave_on_server(bindparam("contact_id")))
# touch_anchor's rule in SQL: the anchor moves to today, never backwards. The row is stamped
# with the change's own instant, as consent_leave does (not the column's wall-clock default).
_TOUCH_ANCHOR = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("contact_id"))
    .values(
        window_anchor=case(
            (or_(_ANCHOR.is_(None), _ANCHOR < _TODAY), _TODAY),
            else_=_ANCHOR,
        ),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
)


# ``leave_in_steps`` in one PostgreSQL statement: the same locks in the same order (contact,
# subscription, ledger head), the same upsert, anchor rule and ledger event (``ledger_append``).
# Migration 0005 holds the copy an upgrade creates.
LEAVE_FUNCTION = """CREATE OR REPLACE FUNCTION consent_leave(
    p_contact integer, p_topic integer, p_channel varchar, p_at timestamp, p_today date,
    p_before text, p_after text
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM contacts WHERE id = p_contact FOR UPDATE;
    INSERT INTO subscriptions (contact_id, topic_id, status, created_at, updated_at)
    VALUES (p_contact, p_topic, 'unsubscribed', p_at, p_at)
    ON CONFLICT (contact_id, topic_id) DO UPDATE
        SET status = excluded.status, updated_at = excluded.updated_at
        WHERE subscriptions.status <> 'unsubscribed';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE contacts SET window_anchor = GREATEST(window_anchor, p_today), updated_at = p_at
    WHERE id = p_contact;
    PERFORM ledger_append(
        p_contact, p_topic, 'unsubscribed', p_channel, '{}'::json, p_at, p_before, p_after
    );
    RETURN true;
END $$"""
_LEAVE_FUNCTION_DDL = DDL(LEAVE_FUNCTION).execute_if(dialect="postgresql")


def attach_server_ddl(metadata: MetaData) -> None:
    """Have ``metadata.create_all`` also create ``consent_leave`` (after the subscriptions).

    Attaching again (an app per test) changes nothing.
    """
    table = metadata.tables[_SUBSCRIPTIONS.name]
    if not contains(table, "after_create", _LEAVE_FUNCTION_DDL):
        listen(table, "after_create", _LEAVE_FUNCTION_DDL)


def object_to_all(
    session: Session,
    contact: Contact,
    *,
    channel: str,
    now: datetime,
    suppression_key: str,
    reason: SuppressionReason = SuppressionReason.OBJECTION,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Record an objection to all direct marketing: every topic off, address suppressed for good.

    A spam complaint is one too (``reason`` COMPLAINT, from ``prefsvc.inbound.policy``).
    """
    if contact.status is not ContactStatus.ACTIVE:
        return False
    for sub in contact.subscriptions:
        sub.status = SubscriptionStatus.UNSUBSCRIBED
    contact.status = ContactStatus.UNSUBSCRIBED
    if contact.email:
        suppression.add(session, suppression_key, contact.email, reason)
    record(session, contact, EventKind.OBJECTION, channel=channel, now=now, detail=detail)
    return True


def object_by_id(
    session: Session,
    contact_id: int,
    email: str,
    *,
    channel: str,
    now: datetime,
    suppression_key: str,
    reason: SuppressionReason = SuppressionReason.OBJECTION,
    detail: dict[str, Any] | None = None,
) -> None:
    """``object_to_all`` for an active contact whose row the caller has locked and read.

    Core statements on the session's connection and no ORM objects (complaints arrive at
    intake's pace); the same rows as ``object_to_all``, which tests/inbound/test_policy.py
    checks. Rows of this contact the session holds are read again when next used.
    """
    session.flush()  # as ``session.execute`` would (autoflush)
    connection = session.connection()
    connection.execute(_OBJECT_CONTACT, {"contact_id": contact_id})
    connection.execute(_ALL_TOPICS_OFF, {"of_contact": contact_id})
    suppression.put(session, suppression_key, email, reason)
    ledger.append(session, contact_id, EventKind.OBJECTION, channel=channel, now=now, detail=detail)
    held = session.identity_map.get(session.identity_key(Contact, contact_id))
    if held is not None:
        for sub in list(held.__dict__.get("subscriptions", ())):
            session.expire(sub)
        session.expire(held)


_OBJECT_CONTACT = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("contact_id"))
    .values(status=ContactStatus.UNSUBSCRIBED)
)
_ALL_TOPICS_OFF = (
    update(_SUBSCRIPTIONS)
    .where(
        _SUBSCRIPTIONS.c.contact_id == bindparam("of_contact"),
        _SUBSCRIPTIONS.c.status != SubscriptionStatus.UNSUBSCRIBED,
    )
    .values(status=SubscriptionStatus.UNSUBSCRIBED)
)


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
