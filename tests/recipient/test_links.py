"""Leaving by link: one statement on PostgreSQL, committed at once or inside the caller's work."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from prefsvc.consent import ledger
from prefsvc.errors import InvalidToken
from prefsvc.mail.tokens import Signer
from prefsvc.models import (
    ConsentEvent,
    EventKind,
    OutboxJob,
    Subscription,
    SubscriptionStatus,
)
from prefsvc.recipient import links
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.all_databases


@pytest.fixture
def signer(settings) -> Signer:
    return Signer(settings.secret_keys)


@dataclass(frozen=True)
class Subscriber:
    contact_id: int
    topic_id: int
    token: str


@pytest.fixture
def ana(session, signer) -> Subscriber:
    """A contact on the topic "Haven" and her link to it; the session has no transaction open."""
    topic = make_topic(session, name="Haven")
    contact = make_contact(session, topics=[topic])
    session.commit()
    ana = Subscriber(contact.id, topic.id, signer.unsubscribe_token(contact.public_id, topic.id))
    session.commit()
    return ana


def _leave(session, signer, token, clock):
    return links.leave_by_link(
        session, signer, token, channel="one-click", now=clock(), today=clock().date()
    )


def _status(session, contact_id: int, topic_id: int) -> SubscriptionStatus:
    return session.scalar(
        select(Subscription.status).where(
            Subscription.contact_id == contact_id, Subscription.topic_id == topic_id
        )
    )


def test_leaving_returns_the_link_as_it_was_and_changes_once(session, signer, clock, ana):
    link, left = _leave(session, signer, ana.token, clock)
    session.commit()
    again, left_again = _leave(session, signer, ana.token, clock)
    session.commit()

    assert (link.contact_id, link.topic_name_in("nl"), link.subscribed, left) == (
        ana.contact_id,
        "Haven",
        True,
        True,
    )
    assert (again.subscribed, left_again) == (False, False)
    assert _status(session, ana.contact_id, ana.topic_id) is SubscriptionStatus.UNSUBSCRIBED
    assert ledger.verify(session).ok
    assert _held(session) == [("optout_ack", ana.contact_id, {"topic_ids": [ana.topic_id]})]


def _held(session) -> list[tuple[str, int, dict]]:
    jobs = session.scalars(select(OutboxJob).order_by(OutboxJob.id))
    return [tuple(j.args) for j in jobs if j.actor == "send_notice"]


def test_a_forged_link_changes_nothing(session, signer, clock, ana):
    with pytest.raises(InvalidToken):
        _leave(session, signer, ana.token[:-2] + "xx", clock)
    assert _status(session, ana.contact_id, ana.topic_id) is SubscriptionStatus.SUBSCRIBED
    assert _held(session) == []


def test_with_no_transaction_open_the_unsubscribe_stands_by_itself(session, signer, clock, ana):
    """Nothing left for the caller to commit: a rollback afterwards does not undo it."""
    _link, left = _leave(session, signer, ana.token, clock)
    if session.get_bind().dialect.name == "postgresql":
        session.rollback()
    else:
        session.commit()  # SQLite: read, then leave, in the caller's transaction

    assert left
    assert _status(session, ana.contact_id, ana.topic_id) is SubscriptionStatus.UNSUBSCRIBED
    assert len(_held(session)) == 1  # the acknowledgement stands with it


def test_inside_the_callers_unfinished_work_it_joins_it(session, signer, clock, ana):
    """The caller's transaction holds the ledger head: leaving must not wait for it (it would
    wait for ever) but join it, and go with it when it is rolled back."""
    ledger.append(session, ana.contact_id, EventKind.PREFERENCES, channel="web", now=clock())
    session.flush()

    _link, left = _leave(session, signer, ana.token, clock)
    assert left
    session.rollback()

    assert _status(session, ana.contact_id, ana.topic_id) is SubscriptionStatus.SUBSCRIBED
    assert session.scalars(select(ConsentEvent)).all() == []
    assert _held(session) == []  # and its acknowledgement goes with it
