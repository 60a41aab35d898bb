"""The admin contact pages over HTTP: the directory, its export, and one contact's actions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from prefsvc.consent import changes as consent
from prefsvc.models import (
    AuditEvent,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    SubscriptionStatus,
)
from tests.factories import make_campaign, make_contact, make_topic
from tests.web.admin.conftest import post, sign_in


def audit(session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_contact_search_finds_by_part_of_name_or_address(as_role, session, topic):
    make_contact(session, "ana.peeters@example.org", first_name="Ana", last_name="Peeters")
    make_contact(session, "bram@example.org", first_name="Bram", last_name="Janssens")
    session.commit()
    client = as_role("privacy")
    page = client.get("/admin/contacts/", query_string={"q": "peet"}).get_data(as_text=True)
    assert "ana.peeters@example.org" in page
    assert "bram@example.org" not in page
    page = client.get("/admin/contacts/", query_string={"q": "100%_"}).get_data(as_text=True)
    assert "0 contacts" in page


def test_the_list_pages_past_fifty_and_keeps_the_filters_in_the_links(as_role, session, topic):
    for n in range(60):
        make_contact(session, f"p{n:02d}@example.org", language="fr", topics=[topic])
    make_contact(session, "nl@example.org")
    session.commit()
    client = as_role("marketing")
    args = {"language": "fr", "sort": "email", "per_page": "25"}
    first = client.get("/admin/contacts/", query_string=args).get_data(as_text=True)
    assert "60 contacts" in first and "Page 1 of 3" in first
    assert "p00@example.org" in first and "p25@example.org" not in first
    assert "nl@example.org" not in first
    assert "page=2" in first and "language=fr" in first
    last = client.get("/admin/contacts/", query_string={**args, "page": "3"})
    assert "p59@example.org" in last.get_data(as_text=True)
    assert client.get("/admin/contacts/", query_string={**args, "page": "4"}).status_code == 404


@pytest.mark.parametrize(
    "args",
    [{"status": "gone"}, {"window_days": "soon"}, {"per_page": "1000"}, {"sort": "x"}],
)
def test_a_filter_value_that_is_not_known_is_a_readable_400(as_role, args):
    response = as_role("marketing").get("/admin/contacts/", query_string=args)
    assert response.status_code == 400
    assert '<p class="notice notice-error" role="alert">' in response.get_data(as_text=True)


def test_export_streams_the_filtered_list_neutralised_and_audited(as_role, session, topic):
    make_contact(session, "ana@example.org", first_name="=cmd|' /C calc'!A0", topics=[topic])
    make_contact(session, "bram@example.org", language="fr")
    session.commit()
    response = as_role("marketing").get(
        "/admin/contacts/export.csv", query_string={"topic": topic.slug, "q": "ana"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["email"] for r in rows] == ["ana@example.org"]
    assert rows[0]["first_name"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["topics"] == topic.slug
    (event,) = audit(session, "contacts.export")
    assert event.actor == "user:marketing"
    assert event.detail == {"rows": 1, "topic": topic.slug, "sort": "added", "search": True}


def test_privacy_staff_may_not_export_the_list(as_role):
    assert as_role("privacy").get("/admin/contacts/export.csv").status_code == 403


def test_contact_page_shows_subscriptions_window_and_consent_history(
    as_role, session, topic, clock
):
    person = make_contact(session, "ana@example.org", topics=[topic], anchor=date(2025, 6, 1))
    consent.unsubscribe(
        session, person, topic, channel="one-click", now=clock(), today=clock().date()
    )
    session.commit()
    page = as_role("marketing").get(f"/admin/contacts/{person.public_id}").get_data(as_text=True)
    assert "Nieuwe opleidingen" in page
    assert "2031-03-10" in page  # unsubscribing is a preference change: it moves the anchor
    assert "one-click" in page
    assert "2026-03-10 10:30" in page  # 09:30 UTC shown in Europe/Brussels


def test_contact_page_shows_the_mails_sent_and_the_reports_that_came_back(as_role, session, topic):
    person = make_contact(
        session, "ana@example.org", topics=[topic], bounced_at=datetime(2026, 3, 9, tzinfo=UTC)
    )
    campaign = make_campaign(session, topic, subject="Voorjaarsopleidingen")
    delivery = Delivery(
        campaign_id=campaign.id,
        contact_id=person.id,
        status=DeliveryStatus.SENT,
        sent_at=datetime(2026, 3, 8, 12, 0, tzinfo=UTC),
        feedback="hard_bounce",
    )
    session.add(delivery)
    session.flush()
    report = InboundMessage(
        received_at=datetime(2026, 3, 9, tzinfo=UTC),
        digest="d" * 64,
        kind="hard_bounce",
        status="5.1.1",
        delivery_id=delivery.id,
        contact_id=person.id,
        outcome="bounced",
        raw=b"Subject: Undelivered Mail\r\n\r\n<script>alert(1)</script> 550 5.1.1 no such user",
    )
    session.add(report)
    session.commit()
    client = as_role("privacy")
    page = client.get(f"/admin/contacts/{person.public_id}").get_data(as_text=True)
    assert "Voorjaarsopleidingen" in page and "2026-03-08 13:00" in page
    assert "hard bounce" in page and "5.1.1" in page
    raw = client.get(f"/admin/contacts/{person.public_id}/reports/{report.id}")
    assert raw.status_code == 200
    text = raw.get_data(as_text=True)
    assert "550 5.1.1 no such user" in text and "<script>alert" not in text
    other = make_contact(session, "bram@example.org")
    session.commit()
    assert client.get(f"/admin/contacts/{other.public_id}/reports/{report.id}").status_code == 404


def test_marketing_edits_details_through_rectification_and_it_is_audited(as_role, session, topic):
    person = make_contact(session, "ana@example.org", first_name="Ana", language="nl")
    session.commit()
    client = as_role("marketing")
    url = f"/admin/contacts/{person.public_id}"
    response = post(
        client,
        f"{url}/details",
        {"first_name": "Anna", "last_name": "Peeters", "language": "fr", "role": "teacher"},
        form_page=url,
    )
    assert response.status_code == 303
    session.expire_all()
    assert (person.first_name, person.language.value, person.role.value) == (
        "Anna",
        "fr",
        "teacher",
    )
    (event,) = audit(session, "contact.update")
    assert event.detail == {"fields": ["first_name", "language", "role"]}
    assert event.target == f"contact:{person.public_id}"


@pytest.mark.parametrize(
    "form",
    [{"language": "de"}, {"first_name": "x" * 201, "language": "nl"}, {"role": "boss"}],
)
def test_bad_details_are_refused_with_a_reason_and_nothing_stored(as_role, session, form):
    person = make_contact(session, "ana@example.org", first_name="Ana")
    session.commit()
    client = as_role("marketing")
    url = f"/admin/contacts/{person.public_id}"
    response = post(client, f"{url}/details", {"language": "nl", **form}, form_page=url)
    assert response.status_code == 422
    assert 'role="alert"' in response.get_data(as_text=True)
    session.expire_all()
    assert person.first_name == "Ana" and person.language.value == "nl"
    assert audit(session, "contact.update") == []


def test_subscriptions_change_through_the_apis_functions(as_role, session, topic):
    other = make_topic(session, "promoties", "Promoties")
    person = make_contact(session, "ana@example.org", topics=[topic])
    session.commit()
    client = as_role("marketing")
    url = f"/admin/contacts/{person.public_id}"
    page = client.get(url).get_data(as_text=True)
    assert 'value="promoties"' in page  # offered to subscribe
    post(client, f"{url}/subscriptions", {"topic": topic.slug, "action": "remove"}, form_page=url)
    post(client, f"{url}/subscriptions", {"topic": "promoties", "action": "add"}, form_page=url)
    session.expire_all()
    statuses = {s.topic.slug: s.status for s in person.subscriptions}
    assert statuses == {
        topic.slug: SubscriptionStatus.UNSUBSCRIBED,
        other.slug: SubscriptionStatus.SUBSCRIBED,
    }
    assert [e.detail for e in audit(session, "subscription.remove")] == [{"topic": topic.slug}]
    assert [e.detail for e in audit(session, "subscription.add")] == [{"topic": "promoties"}]
    # a topic the person left: only they can come back
    again = post(
        client, f"{url}/subscriptions", {"topic": topic.slug, "action": "add"}, form_page=url
    )
    assert again.status_code == 409
    assert "Only they can subscribe again" in again.get_data(as_text=True)
    missing = post(
        client, f"{url}/subscriptions", {"topic": "nope", "action": "add"}, form_page=url
    )
    assert missing.status_code == 422


def test_unsubscribe_from_everything_needs_the_box_ticked(as_role, session, topic):
    person = make_contact(session, "ana@example.org", topics=[topic])
    session.commit()
    client = as_role("marketing")
    url = f"/admin/contacts/{person.public_id}"
    assert post(client, f"{url}/objection", {}, form_page=url).status_code == 422
    assert post(client, f"{url}/objection", {"confirm": "yes"}, form_page=url).status_code == 303
    session.expire_all()
    assert person.status is ContactStatus.UNSUBSCRIBED
    assert len(audit(session, "contact.objection")) == 1


def test_only_the_privacy_role_erases_and_it_is_audited(app, as_role, session, topic):
    person = make_contact(session, "ana@example.org", topics=[topic])
    session.commit()
    url = f"/admin/contacts/{person.public_id}"
    marketing = as_role("marketing")
    assert "Erase this person" not in marketing.get(url).get_data(as_text=True)
    assert post(marketing, f"{url}/erase", {"confirm": "yes"}, form_page=url).status_code == 403
    privacy = app.test_client()
    assert sign_in(privacy, "privacy").status_code == 302
    assert "Edit details" not in privacy.get(url).get_data(as_text=True)
    assert post(privacy, f"{url}/details", {"first_name": "X"}, form_page=url).status_code == 403
    assert post(privacy, f"{url}/erase", {}, form_page=url).status_code == 422
    assert post(privacy, f"{url}/erase", {"confirm": "yes"}, form_page=url).status_code == 303
    session.expire_all()
    assert person.status is ContactStatus.ERASED and person.email is None
    page = privacy.get(url).get_data(as_text=True)
    assert "ana@example.org" not in page and "Erase this person" not in page
    (event,) = audit(session, "contact.erase")
    assert event.actor == "user:privacy" and event.detail == {"kept": []}


def test_clearing_a_bounce_state_is_audited_and_makes_the_address_mailable(as_role, session, topic):
    person = make_contact(
        session,
        "ana@example.org",
        topics=[topic],
        bounced_at=datetime(2026, 3, 9, tzinfo=UTC),
        bounce_code="5.1.1",
    )
    session.commit()
    client = as_role("marketing")
    url = f"/admin/contacts/{person.public_id}"
    found = client.get("/admin/contacts/", query_string={"bounced": "1"}).get_data(as_text=True)
    assert "ana@example.org" in found
    response = post(client, f"{url}/bounce/clear", form_page=url)
    assert response.status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert "Bounce state cleared" in page
    session.expire_all()
    assert person.bounced_at is None and person.bounce_code is None
    assert len(audit(session, "contact.bounce_cleared")) == 1
    mailable = client.get("/admin/contacts/", query_string={"status": "mailable"})
    assert "ana@example.org" in mailable.get_data(as_text=True)


def test_unknown_contact_is_404(as_role):
    client = as_role("marketing")
    assert client.get("/admin/contacts/nope").status_code == 404
    assert post(client, "/admin/contacts/nope/bounce/clear").status_code == 404


def test_contact_history_is_shown_in_the_services_time_zone(as_role, session, topic, clock):
    from datetime import UTC, datetime

    person = make_contact(session, "ana@example.org", topics=[topic])
    late = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # 10 March, 00:30 in Brussels
    consent.unsubscribe(session, person, topic, channel="one-click", now=late, today=late.date())
    session.commit()
    page = as_role("marketing").get(f"/admin/contacts/{person.public_id}").get_data(as_text=True)
    assert "2026-03-10 00:30" in page
    assert "2026-03-09 23:30" not in page
