"""Fixtures of the recipient page tests: two topics, Ana on both, her links, and ledger reads.

``ask`` and ``delivered`` drive the sign-in form (``/p``) and read what the worker mailed.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from prefsvc.mail.tokens import Signer
from prefsvc.models import ConsentEvent, Contact, Subscription, SubscriptionStatus, Topic
from prefsvc.queue import broker
from tests.factories import make_contact, make_topic

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
TODAY = date(2026, 3, 10)  # the FrozenClock's day in Europe/Brussels


@pytest.fixture
def settings(settings):
    """Low sign-in limits, reached in a few requests (only ``POST /p`` counts them)."""
    return settings.with_(
        rate_limit_signin_address="3 per hour", rate_limit_signin_client="6 per hour"
    )


@pytest.fixture
def signer(settings) -> Signer:
    return Signer(settings.secret_keys)


@pytest.fixture
def newsletter(session) -> Topic:
    topic = make_topic(session, slug="haven", name="Haven & Logistiek")
    topic.description = "Opleidingen voor de haven, elke maand."
    return topic


@pytest.fixture
def courses(session) -> Topic:
    return make_topic(session, slug="cursussen", name="Cursusaanbod")


@pytest.fixture
def ana(session, newsletter, courses) -> Contact:
    contact = make_contact(
        session, "ana@example.org", topics=[newsletter, courses], organisation="Haven NV"
    )
    session.commit()
    return contact


@pytest.fixture
def link(signer, ana, newsletter) -> str:
    return f"/u/{signer.unsubscribe_token(ana.public_id, newsletter.id)}"


@pytest.fixture
def prefs(signer, ana) -> str:
    return f"/p/{signer.preferences_token(ana.public_id)}"


def status(session, contact: Contact, topic: Topic) -> SubscriptionStatus:
    session.expire_all()
    return session.scalar(
        select(Subscription.status).where(
            Subscription.contact_id == contact.id, Subscription.topic_id == topic.id
        )
    )


def events(session, contact: Contact) -> list[ConsentEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact.id)
            .order_by(ConsentEvent.seq)
        )
    )


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def csrf(client, path: str = "/p") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def ask(client, email: str, **headers):
    return client.post("/p", data={"csrf_token": csrf(client), "email": email}, headers=headers)


def delivered(outbox):
    broker.queue().join(timeout_ms=10_000)
    return outbox()
