"""Consent changes: leaving a topic moves the anchor once, and racing POSTs record one event."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from prefsvc.consent import changes as consent
from prefsvc.consent import ledger
from prefsvc.extensions import db
from prefsvc.models import (
    ConsentEvent,
    Contact,
    EventKind,
    LedgerHead,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from tests.factories import make_contact, make_topic


@pytest.mark.parametrize("backend", ["postgresql"])  # row locks: SQLite has one writer anyway
def test_two_one_click_posts_at_once_record_a_single_unsubscribe(app, session):
    topic = make_topic(session)
    contact = make_contact(session, "dubbel@example.org", topics=[topic])
    session.commit()
    contact_id, topic_id = contact.id, topic.id
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def post() -> None:
        with app.app_context():
            s = db.session
            person, newsletter = s.get(Contact, contact_id), s.get(Topic, topic_id)
            barrier.wait()
            results.append(
                consent.unsubscribe(
                    s,
                    person,
                    newsletter,
                    channel="one-click",
                    now=datetime(2026, 3, 10, tzinfo=UTC),
                    today=date(2026, 3, 10),
                )
            )
            s.commit()
            db.session.remove()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [False, False, False, True]
    events = session.scalar(
        select(func.count())
        .select_from(ConsentEvent)
        .where(ConsentEvent.contact_id == contact_id, ConsentEvent.kind == EventKind.UNSUBSCRIBED)
    )
    assert events == 1


@pytest.mark.all_databases
def test_leaving_moves_the_anchor_to_today_once_and_records_one_event(session):
    topic = make_topic(session)
    contact = make_contact(session, anchor=date(2025, 6, 1), topics=[topic])
    session.commit()
    now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)

    first = consent.leave(
        session, contact.id, topic.id, channel="one-click", now=now, today=date(2026, 3, 10)
    )
    again = consent.leave(
        session, contact.id, topic.id, channel="one-click", now=now, today=date(2026, 3, 11)
    )
    session.commit()

    assert (first, again) == (True, False)
    session.refresh(contact)
    assert contact.window_anchor == date(2026, 3, 10)
    assert consent.subscription(session, contact, topic).status is SubscriptionStatus.UNSUBSCRIBED
    kinds = session.scalars(select(ConsentEvent.kind).where(ConsentEvent.contact_id == contact.id))
    assert list(kinds) == [EventKind.UNSUBSCRIBED]
    assert ledger.verify(session).ok


@pytest.mark.all_databases
def test_leaving_a_topic_never_subscribed_keeps_a_row_and_a_later_anchor(session):
    """No subscription row yet: one is written as unsubscribed; a later anchor stays."""
    topic = make_topic(session)
    contact = make_contact(session, anchor=date(2026, 5, 1))
    session.commit()

    assert consent.leave(
        session,
        contact.id,
        topic.id,
        channel="one-click",
        now=datetime(2026, 3, 10, tzinfo=UTC),
        today=date(2026, 3, 10),
    )
    session.commit()

    session.refresh(contact)
    assert contact.window_anchor == date(2026, 5, 1)
    assert consent.subscription(session, contact, topic).status is SubscriptionStatus.UNSUBSCRIBED


@pytest.mark.all_databases
def test_unsubscribe_shows_the_change_on_the_loaded_objects(session):
    """``unsubscribe`` works by id underneath; the objects in hand must not go stale."""
    topic = make_topic(session)
    contact = make_contact(session, anchor=date(2025, 6, 1), topics=[topic])
    session.commit()
    held = consent.subscription(session, contact, topic)
    assert held.status is SubscriptionStatus.SUBSCRIBED

    consent.unsubscribe(
        session,
        contact,
        topic,
        channel="api",
        now=datetime(2026, 3, 10, tzinfo=UTC),
        today=date(2026, 3, 10),
    )

    assert held.status is SubscriptionStatus.UNSUBSCRIBED
    assert contact.window_anchor == date(2026, 3, 10)
    assert [s.status for s in contact.subscriptions] == [SubscriptionStatus.UNSUBSCRIBED]


def _leave_outcome(session, contact_id: int) -> dict[str, object]:
    """Everything a leave may write: ledger rows and head, subscriptions, the contact row."""
    events = session.execute(select(*ledger.EVENT_COLUMNS).order_by(ConsentEvent.seq)).all()
    subscriptions = session.execute(
        select(
            Subscription.topic_id,
            Subscription.status,
            Subscription.created_at,
            Subscription.updated_at,
        )
        .where(Subscription.contact_id == contact_id)
        .order_by(Subscription.topic_id)
    ).all()
    contact = session.execute(
        select(Contact.window_anchor, Contact.status, Contact.updated_at).where(
            Contact.id == contact_id
        )
    ).one()
    head = session.execute(select(LedgerHead.seq, LedgerHead.hash)).one()
    return {
        "events": [tuple(row) for row in events],
        "subscriptions": [tuple(row) for row in subscriptions],
        "contact": tuple(contact),
        "head": tuple(head),
    }


@pytest.mark.parametrize("backend", ["postgresql"])  # consent_leave exists on PostgreSQL only
def test_consent_leave_on_the_server_leaves_what_leave_in_steps_leaves(session):
    """The PL/pgSQL twin and the Python rule, from the same state with the same inputs."""
    subscribed, never, other = make_topic(session), make_topic(session), make_topic(session)
    early = make_contact(session, "early@example.org", anchor=date(2025, 6, 1), topics=[subscribed])
    late = make_contact(session, "late@example.org", anchor=date(2026, 5, 1), topics=[other])
    consent.record(session, early, EventKind.IMPORTED, channel="import", now=datetime.now(UTC))
    session.commit()
    now = datetime(2026, 3, 10, 9, 30, 0, 123456, tzinfo=UTC)
    steps = [  # (contact, topic): left, never subscribed, already left, a later anchor stays
        (early.id, subscribed.id),
        (early.id, never.id),
        (early.id, subscribed.id),
        (late.id, other.id),
    ]

    def run(leave) -> tuple[list[bool], dict[str, object], dict[str, object]]:
        left = [
            leave(session, contact_id, topic_id, channel="one-click", now=now, today=now.date())
            for contact_id, topic_id in steps
        ]
        outcome = (left, _leave_outcome(session, early.id), _leave_outcome(session, late.id))
        assert ledger.verify(session).ok
        session.rollback()
        return outcome

    in_python = run(consent.leave_in_steps)
    on_server = run(consent.leave_in_one_call)

    assert on_server[0] == in_python[0]
    for server_side, python_side in zip(on_server[1:], in_python[1:], strict=True):
        for part in ("events", "head", "subscriptions", "contact"):
            assert server_side[part] == python_side[part], part
    left, early_outcome, _ = in_python
    assert left == [True, True, False, True]
    kinds = [event[3] for event in early_outcome["events"]]  # the whole chain, both contacts
    assert kinds == [EventKind.IMPORTED, *[EventKind.UNSUBSCRIBED] * 3]
