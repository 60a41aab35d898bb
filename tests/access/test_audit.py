"""The audit log: who did what to which object, ids only, newest first."""

from __future__ import annotations

import pytest

from prefsvc.access import audit


def test_entries_are_listed_newest_first_and_filtered(session, clock):
    audit.record(session, actor="apikey:1", action="topic.create", target="topic:a", now=clock())
    clock.advance(minutes=1)
    audit.record(session, actor="admin:2", action="contact.erase", target="contact:X", now=clock())
    clock.advance(minutes=1)
    audit.record(
        session, actor="apikey:1", action="campaign.send", target="campaign:3", now=clock()
    )

    page = audit.recent(session)
    assert [e.action for e in page.items] == ["campaign.send", "contact.erase", "topic.create"]
    assert audit.recent(session, actor="apikey:1").total == 2
    assert [e.target for e in audit.recent(session, action="contact.erase").items] == ["contact:X"]
    second = audit.recent(session, page=2, per_page=2)
    assert [e.action for e in second.items] == ["topic.create"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target": "contact:ana@example.org"},
        {"detail": {"to": "ana@example.org"}},
        {"detail": {"rows": [{"email": "x@example.org"}]}},
    ],
)
def test_an_address_is_refused(session, clock, kwargs):
    with pytest.raises(ValueError, match="address"):
        audit.record(session, actor="apikey:1", action="x", now=clock(), **kwargs)


def test_an_entry_needs_an_actor_and_an_action(session, clock):
    with pytest.raises(ValueError):
        audit.record(session, actor="", action="x", now=clock())
    with pytest.raises(ValueError):
        audit.record(session, actor="apikey:1", action="", now=clock())
