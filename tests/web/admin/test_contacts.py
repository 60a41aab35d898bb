"""The admin contact pages over HTTP: search and one contact's record."""

from __future__ import annotations

from datetime import date

from prefsvc.consent import changes as consent
from tests.factories import make_contact


def test_contact_search_finds_by_part_of_name_or_address(as_role, session, topic):
    make_contact(session, "ana.peeters@example.org", first_name="Ana", last_name="Peeters")
    make_contact(session, "bram@example.org", first_name="Bram", last_name="Janssens")
    session.commit()
    client = as_role("privacy")
    page = client.get("/admin/contacts/", query_string={"q": "peet"}).get_data(as_text=True)
    assert "ana.peeters@example.org" in page
    assert "bram@example.org" not in page
    page = client.get("/admin/contacts/", query_string={"q": "100%_"}).get_data(as_text=True)
    assert "0 found" in page


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


def test_unknown_contact_is_404(as_role):
    assert as_role("marketing").get("/admin/contacts/nope").status_code == 404


def test_contact_history_is_shown_in_the_services_time_zone(as_role, session, topic, clock):
    from datetime import UTC, datetime

    person = make_contact(session, "ana@example.org", topics=[topic])
    late = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # 10 March, 00:30 in Brussels
    consent.unsubscribe(session, person, topic, channel="one-click", now=late, today=late.date())
    session.commit()
    page = as_role("marketing").get(f"/admin/contacts/{person.public_id}").get_data(as_text=True)
    assert "2026-03-10 00:30" in page
    assert "2026-03-09 23:30" not in page
