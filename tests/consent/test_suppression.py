"""The suppression list: keyed hashes only, checked by the send path, imports and renewals."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from prefsvc.campaigns import audience, campaigns
from prefsvc.consent import suppression
from prefsvc.models import Suppression, SuppressionReason
from prefsvc.people import importing
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
KEY = "test-suppression-key-0123456789"


def test_the_list_holds_keyed_hashes_never_an_address(session):
    suppression.add(session, KEY, "Ana@Example.org", SuppressionReason.COMPLAINT)
    session.commit()

    [row] = session.execute(select(Suppression.address_hash, Suppression.reason)).all()
    assert "ana" not in row.address_hash and "example" not in row.address_hash
    assert len(row.address_hash) == 64
    assert row.address_hash != suppression.address_hash("another-key-0123456789", "ana@example.org")
    assert suppression.is_suppressed(session, KEY, "ANA@example.org")


def test_adding_twice_keeps_the_first_reason(session):
    suppression.add(session, KEY, "ana@example.org", SuppressionReason.OBJECTION)
    suppression.add(session, KEY, "ana@example.org", SuppressionReason.BOUNCE)

    [reason] = session.scalars(select(Suppression.reason)).all()
    assert reason is SuppressionReason.OBJECTION


def test_a_suppressed_address_is_not_mailed_even_if_its_contact_looks_active(
    session, settings, clock, run_campaign, outbox
):
    topic = make_topic(session, slug="nieuws")
    make_contact(session, "ok@example.org", anchor=date(2025, 1, 1), topics=[topic])
    listed = make_contact(
        session, "complained@example.org", anchor=date(2025, 1, 1), topics=[topic]
    )
    suppression.add(session, settings.suppression_key, listed.email, SuppressionReason.COMPLAINT)
    campaign = make_campaign(session, topic)
    session.commit()

    finished = run_campaign(campaign.id)

    assert [m["To"] for m in outbox()] == ["ok@example.org"]
    report = campaigns.stats(session, finished, today=date(2026, 3, 10), years=5)
    assert report["excluded"] == {audience.SUPPRESSED: 1}


def test_an_import_checks_the_list_before_anything_else(session, clock):
    suppression.add(session, KEY, "gone@example.org", SuppressionReason.ERASURE)
    session.commit()

    result = importing.import_csv(
        session,
        b"email,first_name\nGONE@example.org,Ana\n",
        filename="x.csv",
        now=clock(),
        today=date(2026, 3, 10),
        suppression_key=KEY,
    )

    assert (result.created, result.suppressed) == (0, 1)
