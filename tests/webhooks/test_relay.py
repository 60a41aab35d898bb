"""The relay and the actor on every broker: a real Dramatiq worker delivers, as `prefsvc worker`."""

from __future__ import annotations

import time

import dramatiq
import pytest

from prefsvc.consent import changes as consent
from prefsvc.queue import broker
from tests.factories import make_contact, make_topic
from tests.webhooks.conftest import verify

pytestmark = pytest.mark.all_brokers


def test_a_worker_relays_and_delivers_an_unsubscribe(app, session, clock, receiver, endpoint):
    topic = make_topic(session)
    ana = make_contact(session, "ana@example.org", topics=[topic])
    consent.unsubscribe(session, ana, topic, channel="api", now=clock(), today=clock().date())
    session.commit()
    queue = broker.queue()
    worker = dramatiq.Worker(queue.broker, worker_threads=2, worker_timeout=100)
    worker.start()  # boots the relay thread too
    try:
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    [received] = receiver.received
    assert received.payload["data"]["contact"]["public_id"] == ana.public_id
    assert verify(endpoint.secret, received.headers, received.body, now=int(clock().timestamp()))
