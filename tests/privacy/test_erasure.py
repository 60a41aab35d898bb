"""Erasure: personal data removed, the address suppressed, a legal hold keeps what the law needs."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from prefsvc.campaigns import campaigns
from prefsvc.consent import ledger, suppression
from prefsvc.errors import InvalidInput
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    EventKind,
    RightsKind,
    RightsRequest,
    Subscription,
    SubscriptionStatus,
)
from prefsvc.privacy import erasure, rectification
from tests.factories import make_contact

pytestmark = pytest.mark.all_databases


def test_erasure_removes_personal_data_and_suppresses_the_address(session, settings, clock, person):
    result = erasure.erase(session, person, settings=settings, now=clock())
    session.commit()

    assert result.kept == [] and result.reason is None
    assert person.status is ContactStatus.ERASED
    for name in erasure.PERSONAL_FIELDS:
        assert getattr(person, name) is None, name
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0
    assert suppression.is_suppressed(session, settings.suppression_key, "Ana@Example.org")
    assert not suppression.is_suppressed(session, settings.suppression_key, "bo@example.org")
    last = session.scalar(select(ConsentEvent).order_by(ConsentEvent.seq.desc()).limit(1))
    assert (last.kind, last.detail) == (EventKind.ERASED, {"kept": []})
    assert ledger.verify(session).ok


def test_erasure_keeps_campaign_figures_but_no_personal_data_anywhere(
    session, settings, clock, person
):
    delivery = session.scalar(select(Delivery))
    campaign = campaigns.get(session, delivery.campaign_id)
    before = campaigns.stats(session, campaign, today=date(2026, 3, 10), years=5)

    erasure.erase(session, person, settings=settings, now=clock())
    session.commit()

    after = campaigns.stats(session, campaign, today=date(2026, 3, 10), years=5)
    assert (after["audience"], after["sent"]) == (before["audience"], before["sent"]) == (1, 1)
    session.refresh(delivery)
    assert (delivery.status, delivery.smtp_text) == (DeliveryStatus.SENT, None)
    events = session.scalars(select(ConsentEvent)).all()
    stored = json.dumps([[e.channel, e.detail] for e in events])
    for value in ("ana@example.org", "Ana", "Peeters", "Haven"):
        assert value not in stored


def test_erasing_twice_changes_nothing_more(session, settings, clock, person):
    erasure.erase(session, person, settings=settings, now=clock())
    session.commit()
    events = session.scalar(select(func.count()).select_from(ConsentEvent))

    again = erasure.erase(session, person, settings=settings, now=clock())

    assert again.kept == []
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == events


def test_legal_hold_keeps_what_the_law_needs_and_says_why(session, settings, clock, person):
    person.legal_hold_reason = "invoice 2026/041 unpaid"
    person.legal_hold_until = date(2033, 12, 31)

    result = erasure.erase(session, person, settings=settings, now=clock())
    session.commit()

    assert result.kept == ["first_name", "last_name", "organisation"]
    assert (result.reason, result.until) == ("invoice 2026/041 unpaid", date(2033, 12, 31))
    assert (person.first_name, person.last_name, person.organisation) == (
        "Ana",
        "Peeters",
        "Haven NV",
    )
    assert person.email is None and person.status is ContactStatus.ERASED
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")


def test_an_ended_legal_hold_keeps_nothing(session, settings, clock, person):
    person.legal_hold_reason = "invoice 2019/002"
    person.legal_hold_until = date(2026, 3, 9)

    result = erasure.erase(session, person, settings=settings, now=clock())

    assert (result.kept, result.reason) == ([], None)
    assert person.first_name is None


def test_erased_contact_cannot_be_rectified(session, settings, clock, person):
    erasure.erase(session, person, settings=settings, now=clock())

    with pytest.raises(InvalidInput, match="erased"):
        rectification.rectify(session, person, {"first_name": "Ana"}, now=clock(), channel="web")


def test_erasure_clears_request_notes_but_keeps_the_register(session, settings, clock, person):
    erasure.erase(session, person, settings=settings, now=clock())
    session.commit()

    [request] = session.scalars(select(RightsRequest)).all()
    assert (request.contact_id, request.kind, request.note) == (person.id, RightsKind.ACCESS, None)


def test_cli_erase_confirms_in_one_line(session, person, runner, settings):
    result = runner.invoke(args=["contacts", "erase", "ana@example.org"])

    assert result.exit_code == 0, result.output
    assert result.stdout == f"erased contact {person.public_id}; address suppressed\n"
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")


def test_cli_erase_names_what_a_legal_hold_keeps(session, person, runner):
    person.legal_hold_reason = "accounting law"
    person.legal_hold_until = date(2033, 1, 1)
    session.commit()

    result = runner.invoke(args=["contacts", "erase", "ana@example.org"])

    assert result.exit_code == 0, result.output
    assert (
        "kept first_name, last_name, organisation (legal hold: accounting law until 2033-01-01)"
        in (result.stdout)
    )


def test_cli_erase_of_an_unknown_address_fails_in_one_line(app, runner):
    result = runner.invoke(args=["contacts", "erase", "nobody@example.org"])

    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["Error: no contact with that address"]


def test_erased_contact_is_never_in_an_audience_again(session, settings, clock, person):
    from prefsvc.campaigns import audience

    erasure.erase(session, person, settings=settings, now=clock())
    session.commit()

    assert (
        audience.reason_for(person, SubscriptionStatus.SUBSCRIBED, on=date(2026, 3, 10), years=5)
        == audience.SUPPRESSED
    )


def test_erased_address_is_refused_by_a_later_import(session, person, runner, tmp_path):
    """CONTRACT §4: an import never re-adds an erased address (counted ``suppressed``)."""
    assert runner.invoke(args=["contacts", "erase", "ana@example.org"]).exit_code == 0
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "email,first_name,topics,basis,basis_date\n"
        "Ana@Example.org,Ana,nieuwe-opleidingen,training,2026-03-01\n",
        encoding="utf-8",
    )

    result = runner.invoke(args=["contacts", "import", str(csv_file)])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["suppressed"] == 1
    session.expire_all()
    emails = session.scalars(select(Contact.email).where(Contact.email.is_not(None))).all()
    assert emails == []


def test_set_legal_hold_records_the_change_but_not_its_reason(session, clock):
    ana = make_contact(session, "ana@example.org")
    assert erasure.set_legal_hold(
        session, ana, reason="invoice 2026-17", until=date(2033, 1, 1), now=clock()
    )
    assert (ana.legal_hold_reason, ana.legal_hold_until) == ("invoice 2026-17", date(2033, 1, 1))
    event = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == ana.id)).one()
    assert event.detail["legal_hold"] == "set"
    assert "invoice" not in json.dumps(event.detail)
    assert not erasure.set_legal_hold(
        session, ana, reason="invoice 2026-17", until=date(2033, 1, 1), now=clock()
    )
    assert ledger.verify(session).ok


def test_lifting_a_legal_hold_lets_erasure_remove_everything(session, clock, settings):
    ana = make_contact(session, "ana@example.org", organisation="Acme")
    erasure.set_legal_hold(session, ana, reason="invoice", until=None, now=clock())
    erasure.set_legal_hold(session, ana, reason=None, until=None, now=clock())
    result = erasure.erase(session, ana, settings=settings, now=clock())
    assert result.kept == []
    assert ana.organisation is None


@pytest.mark.parametrize(
    ("reason", "until", "field"),
    [
        ("x" * 501, None, "reason"),
        ("two\nlines", None, "reason"),
        ("ok", date(2020, 1, 1), "until"),
        (None, date(2030, 1, 1), "reason"),
    ],
)
def test_a_bad_legal_hold_is_refused(session, clock, reason, until, field):
    ana = make_contact(session)
    with pytest.raises(InvalidInput) as caught:
        erasure.set_legal_hold(session, ana, reason=reason, until=until, now=clock())
    assert caught.value.field == field


def test_an_erased_contact_cannot_be_put_on_hold(session, clock, settings):
    ana = make_contact(session)
    erasure.erase(session, ana, settings=settings, now=clock())
    with pytest.raises(InvalidInput):
        erasure.set_legal_hold(session, ana, reason="invoice", until=None, now=clock())
