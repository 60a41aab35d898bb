"""Which held change is which event, and where the address goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from prefsvc.webhooks import events

AT = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "channel", "event"),
    [
        ("resubscribed", "undo", "contact.subscribed"),
        ("unsubscribed", "one-click", "contact.unsubscribed"),
        ("objection", "preferences", "contact.objected"),
        ("objection", "complaint", "contact.complained"),
        ("paused", "preferences", "contact.updated"),
        ("anonymised", "retention", "contact.erased"),
        ("bounced", None, "contact.bounced"),
    ],
)
def test_each_held_kind_is_one_event(kind, channel, event):
    assert events.event_of(kind, channel) == event


def test_the_address_goes_only_where_the_receiver_must_act():
    def payload(name):
        return events.contact_payload(
            name, occurred_at=AT, public_id="p1", topic_slug=None, channel="x", ledger_seq=1
        )

    sent = events.with_address(payload(events.UNSUBSCRIBED), "ana@example.org")
    assert sent["data"]["contact"] == {"public_id": "p1", "email": "ana@example.org"}
    erased = events.with_address(payload(events.ERASED), "ana@example.org")
    assert "email" not in erased["data"]["contact"]
    assert sent["timestamp"] == "2026-03-10T09:30:00Z"
