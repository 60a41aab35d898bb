"""What went between us and one contact: the mails sent and the reports that came back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from prefsvc.errors import NotFound
from prefsvc.models import Delivery, DeliveryStatus, InboundMessage
from prefsvc.people import correspondence
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases


def test_mails_sent_show_the_subject_in_the_variant_the_contact_gets_newest_first(session):
    topic = make_topic(session, names={"nl": "Opleidingen", "fr": "Formations"})
    person = make_contact(session, "amelie@example.org", language="fr")
    older = make_campaign(
        session,
        topic,
        variants={"nl": ("Nieuw", "<p>nl</p>", None), "fr": ("Nouveau", "<p/>", None)},
    )
    newer = make_campaign(session, topic, subject="Alleen in het Nederlands")
    sent = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    session.add_all(
        [
            Delivery(
                campaign_id=older.id, contact_id=person.id, status=DeliveryStatus.SENT, sent_at=sent
            ),
            Delivery(
                campaign_id=newer.id,
                contact_id=person.id,
                status=DeliveryStatus.EXCLUDED,
                reason="no_variant_in_language",
            ),
        ]
    )
    session.flush()
    mails = correspondence.mails_sent(session, person)
    assert [(m.subject, m.status, m.reason) for m in mails] == [
        ("Alleen in het Nederlands", "excluded", "no_variant_in_language"),
        ("Nouveau", "sent", None),
    ]
    assert mails[1].topic == "Formations" and mails[1].at == sent


def test_reports_are_listed_and_opened_only_for_their_own_contact(session):
    person = make_contact(session, "ana@example.org")
    other = make_contact(session, "bram@example.org")
    report = InboundMessage(
        received_at=datetime(2026, 3, 9, tzinfo=UTC),
        digest="a" * 64,
        kind="soft_bounce",
        status="4.2.2",
        contact_id=person.id,
        outcome="scored",
        raw="Subject: Délai\r\n\r\nmailbox full \xff".encode("latin-1"),
    )
    session.add(report)
    session.flush()
    (listed,) = correspondence.returned(session, person)
    assert (listed.kind, listed.status, listed.outcome) == ("soft_bounce", "4.2.2", "scored")
    assert "mailbox full" in correspondence.raw_report(session, person, report.id)
    assert correspondence.returned(session, other) == []
    with pytest.raises(NotFound):
        correspondence.raw_report(session, other, report.id)
