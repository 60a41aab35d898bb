"""Consent changes: racing one-click unsubscribes of the same link record one event."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from prefsvc import consent
from prefsvc.extensions import db
from prefsvc.models import ConsentEvent, Contact, EventKind, Topic
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
