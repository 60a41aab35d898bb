"""``GET /api/v1/changes``: every change once, in ledger order, with an opaque cursor."""

from __future__ import annotations

import pytest

from prefsvc.consent import changes as consent
from prefsvc.webhooks import feed
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.all_databases


@pytest.fixture
def history(session, clock):
    """Ana leaves two topics, Bo objects: three changes after their two contacts' rows."""
    a, b = make_topic(session, slug="a"), make_topic(session, slug="b")
    ana = make_contact(session, "ana@example.org", topics=[a, b])
    bo = make_contact(session, "bo@example.org", topics=[a])
    today = clock().date()
    consent.unsubscribe(session, ana, a, channel="one-click", now=clock(), today=today)
    consent.unsubscribe(session, ana, b, channel="preferences", now=clock(), today=today)
    consent.object_to_all(session, bo, channel="api", now=clock(), suppression_key="k" * 20)
    session.commit()
    return ana, bo


def test_the_feed_pages_through_changes_in_order_and_then_waits(client, bearer, history):
    ana, bo = history
    headers = bearer("marketing")
    first = client.get("/api/v1/changes?limit=2", headers=headers).get_json()
    assert [i["type"] for i in first["items"]] == ["contact.unsubscribed"] * 2
    assert first["items"][0]["data"]["contact"] == {
        "public_id": ana.public_id,
        "email": "ana@example.org",
    }
    assert first["more"] is True
    second = client.get(f"/api/v1/changes?after={first['next_cursor']}", headers=headers).get_json()
    assert [i["type"] for i in second["items"]] == ["contact.objected"]
    assert second["items"][0]["data"]["contact"]["public_id"] == bo.public_id
    assert second["more"] is False
    empty = client.get(f"/api/v1/changes?after={second['next_cursor']}", headers=headers).get_json()
    assert empty == {"items": [], "next_cursor": second["next_cursor"], "more": False}


def test_a_forged_cursor_is_a_problem_naming_after(client, bearer, history):
    response = client.get("/api/v1/changes?after=bm9wZQ", headers=bearer("marketing"))
    assert response.status_code == 422
    assert "after" in response.get_json()["errors"]


def test_cursors_are_opaque_but_stable():
    assert feed.seq_of(feed.cursor_of(41)) == 41
    assert "41" not in feed.cursor_of(41)
