"""``GET /api/v1/changes``: every change once, in ledger order, with an opaque cursor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from prefsvc.consent import changes as consent
from prefsvc.models import ConsentEvent, EventKind
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


def test_bounces_and_complaints_are_in_the_feed_with_their_addresses(
    client, bearer, session, settings, clock
):
    from prefsvc.inbound import policy

    bo, cy = make_contact(session, "bo@example.org"), make_contact(session, "cy@example.org")
    dee = make_contact(session, "dee@example.org")
    session.commit()
    rules = policy.Rules(suppression_key=settings.suppression_key, score_limit=2)
    policy.hard_bounce(
        session, bo.id, status="5.1.1", diagnostic="bo@example.org: no such user", now=clock()
    )
    policy.complaint(session, cy.id, now=clock(), rules=rules)
    for _ in range(2):  # soft bounces up to the limit: bounced too
        policy.soft_bounce(
            session,
            dee.id,
            status="4.2.2",
            diagnostic="full",
            now=clock(),
            today=clock().date(),
            rules=rules,
        )
        clock.advance(days=1)
    session.commit()

    items = client.get("/api/v1/changes", headers=bearer("marketing")).get_json()["items"]

    by_type = {(i["type"], i["data"]["contact"]["email"]): i["data"] for i in items}
    assert by_type[("contact.bounced", "bo@example.org")]["channel"] == "bounce"
    assert ("contact.complained", "cy@example.org") in by_type
    assert ("contact.bounced", "dee@example.org") in by_type
    assert len([i for i in items if i["type"] == "contact.bounced"]) == 2

    ledger_detail = session.scalars(
        select(ConsentEvent.detail).where(ConsentEvent.kind == EventKind.BOUNCED)
    ).all()
    assert ledger_detail == [{"code": "5.1.1"}, {"code": "4.2.2", "score": 2}]  # no address
