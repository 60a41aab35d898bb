"""The app factory's database connections: a server that dropped them costs one retry at most."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

import prefsvc
from prefsvc.mail.tokens import Signer
from prefsvc.models import Subscription, SubscriptionStatus
from tests.conftest import PG_ADMIN_URL, POSTGRESQL
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.parametrize("backend", [POSTGRESQL])


def _drop_every_connection(settings) -> int:
    """What a PostgreSQL restart or an idle timeout does to the app's pooled connections."""
    database = make_url(settings.database_url).database
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


@pytest.fixture
def link(app, session, settings) -> str:
    topic = make_topic(session)
    contact = make_contact(session, topics=[topic])
    session.commit()
    return f"/u/{Signer(settings.secret_keys).unsubscribe_token(contact.public_id, topic.id)}"


def _statuses(session) -> list[SubscriptionStatus]:
    session.rollback()
    return list(session.scalars(select(Subscription.status)))


def test_a_connection_dropped_while_idle_in_the_pool_is_replaced_unseen(
    app, client, session, settings, link, monkeypatch
):
    assert client.get(link).status_code == 200
    session.remove()
    assert _drop_every_connection(settings) >= 1
    monkeypatch.setattr(prefsvc, "PING_IDLE_AFTER_SECONDS", 0.0)  # as after a quiet second

    answer = client.post(link, data={"List-Unsubscribe": "One-Click"})

    assert answer.status_code == 200
    assert _statuses(session) == [SubscriptionStatus.UNSUBSCRIBED]


def test_a_connection_dropped_while_in_use_costs_one_readable_503_then_works(
    app, client, session, settings, link, monkeypatch
):
    """Under load nothing is pinged: a dropped connection fails one request, which may retry."""
    assert client.get(link).status_code == 200
    session.remove()
    assert _drop_every_connection(settings) >= 1
    monkeypatch.setattr(prefsvc, "PING_IDLE_AFTER_SECONDS", 3600.0)  # reused at once

    failed = client.post(link, data={"List-Unsubscribe": "One-Click"})

    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "5"
    assert "Foutcode: 503" in failed.get_data(as_text=True)  # the readable page, in Dutch
    assert _statuses(session) == [SubscriptionStatus.SUBSCRIBED]
    retried = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert retried.status_code == 200
    assert _statuses(session) == [SubscriptionStatus.UNSUBSCRIBED]
