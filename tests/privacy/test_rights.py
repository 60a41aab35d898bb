"""Data-subject rights: the request register, access export, rectification, erasure."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from prefsvc.campaigns import campaigns
from prefsvc.consent import changes as consent
from prefsvc.consent import ledger, suppression
from prefsvc.errors import InvalidInput, RequestStateError
from prefsvc.models import (
    CampaignStatus,
    ConsentEvent,
    Contact,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    EventKind,
    Language,
    RightsKind,
    RightsStatus,
    Subscription,
    SubscriptionStatus,
)
from prefsvc.privacy import rights
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases


@pytest.fixture
def person(session, clock, settings):
    """Ana: two topics (one left), a campaign received, a rights request, some history."""
    news = make_topic(session, slug="nieuwe-opleidingen", name="Nieuwe opleidingen")
    promo = make_topic(session, slug="promoties", name="Promoties")
    ana = make_contact(
        session,
        "ana@example.org",
        language=Language.FR,
        anchor=date(2025, 6, 1),
        topics=[news, promo],
        first_name="Ana",
        last_name="Peeters",
        organisation="Haven NV",
    )
    consent.record(session, ana, EventKind.IMPORTED, channel="import", now=clock())
    clock.advance(days=1)
    consent.unsubscribe(
        session, ana, promo, channel="one-click", now=clock(), today=date(2026, 3, 11)
    )
    campaign = make_campaign(
        session,
        news,
        variants={
            "nl": ("Nieuw in maart", "<p>nl</p>", None),
            "fr": ("Nouveau en mars", "<p>fr</p>", None),
        },
    )
    campaign.status = CampaignStatus.SENT
    campaign.audience_size = 1
    session.add(
        Delivery(
            campaign_id=campaign.id,
            contact_id=ana.id,
            status=DeliveryStatus.SENT,
            attempts=1,
            smtp_text="250 2.0.0 Ok: queued for <ana@example.org>",
            sent_at=datetime(2026, 3, 9, 8, 0, tzinfo=UTC),
        )
    )
    rights.open_request(
        session, RightsKind.ACCESS, now=clock(), settings=settings, contact=ana, note="called"
    )
    session.commit()
    return ana


# --- the register -----------------------------------------------------------------------


def test_request_is_due_thirty_days_after_the_brussels_day_it_came_in(session, settings):
    late_evening = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)  # 11 March, 00:30 in Brussels

    request = rights.open_request(session, "erasure", now=late_evening, settings=settings)

    assert request.status is RightsStatus.RECEIVED
    assert request.due_on == date(2026, 4, 10)


def test_request_due_days_follow_the_setting(session, settings, clock):
    request = rights.open_request(
        session, "access", now=clock(), settings=settings.with_(rights_due_days=10)
    )
    assert request.due_on == date(2026, 3, 20)


def test_request_is_done_only_after_identity_is_verified(session, settings, clock):
    request = rights.open_request(session, "access", now=clock(), settings=settings)
    with pytest.raises(RequestStateError, match="verify"):
        rights.close(session, request, now=clock(), handled_by="els")

    rights.mark_verified(session, request, now=clock(), verification="email-link")
    rights.close(session, request, now=clock(), handled_by="els")

    assert (request.status, request.verification, request.handled_by) == (
        RightsStatus.DONE,
        "email-link",
        "els",
    )
    assert request.verified_at == request.closed_at == clock()
    with pytest.raises(RequestStateError):
        rights.close(session, request, now=clock(), handled_by="els")


def test_unverified_request_can_be_refused(session, settings, clock):
    request = rights.open_request(session, "erasure", now=clock(), settings=settings)

    rights.close(session, request, now=clock(), handled_by="els", refused=True, note="no reply")

    assert request.status is RightsStatus.REFUSED
    with pytest.raises(RequestStateError):
        rights.mark_verified(session, request, now=clock())


def test_overdue_lists_open_requests_after_their_due_date(session, settings, clock):
    late = rights.open_request(session, "access", now=clock(), settings=settings)
    verified = rights.open_request(session, "rectification", now=clock(), settings=settings)
    rights.mark_verified(session, verified, now=clock())
    done = rights.open_request(session, "access", now=clock(), settings=settings)
    rights.mark_verified(session, done, now=clock())
    rights.close(session, done, now=clock(), handled_by="els")
    session.commit()

    assert rights.overdue(session, date(2026, 4, 9)) == []  # due on 9 April: not late yet
    assert rights.overdue(session, date(2026, 4, 10)) == [late, verified]


def test_cli_lists_overdue_requests_as_json(session, settings, clock, runner):
    request = rights.open_request(session, "erasure", now=clock(), settings=settings)
    session.commit()
    clock.advance(days=31)

    result = runner.invoke(args=["rights", "overdue", "--json"])

    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["id"], row["kind"], row["due_on"]) == (request.id, "erasure", "2026-04-09")


# --- access -----------------------------------------------------------------------------


def test_export_holds_everything_about_the_person(session, settings, clock, person):
    document = rights.export(session, person, settings=settings, now=clock())

    assert document["contact"] | {"created_at": None, "updated_at": None} == {
        "public_id": person.public_id,
        "email": "ana@example.org",
        "first_name": "Ana",
        "last_name": "Peeters",
        "organisation": "Haven NV",
        "language": "fr",
        "role": None,
        "basis": None,
        "basis_date": "2025-06-01",
        "window_anchor": "2026-03-11",
        "window_expires_on": "2031-03-11",
        "status": "active",
        "paused_until": None,
        "legal_hold": None,
        "created_at": None,
        "updated_at": None,
    }
    assert [(s["topic"], s["name"], s["status"]) for s in document["subscriptions"]] == [
        ("nieuwe-opleidingen", "Nieuwe opleidingen", "subscribed"),
        ("promoties", "Promoties", "unsubscribed"),
    ]
    assert [(e["kind"], e["channel"], e["topic"]) for e in document["consent_history"]] == [
        ("imported", "import", None),
        ("unsubscribed", "one-click", "promoties"),
    ]
    assert document["consent_history"][1]["occurred_at"] == "2026-03-11T09:30:00+00:00"
    assert document["deliveries"] == [
        {
            "campaign_id": document["deliveries"][0]["campaign_id"],
            "topic": "Nieuwe opleidingen",
            "subject": "Nouveau en mars",
            "status": "sent",
            "sent_at": "2026-03-09T08:00:00+00:00",
        }
    ]
    [request] = document["rights_requests"]
    assert (request["kind"], request["status"], request["due_on"]) == (
        "access",
        "received",
        "2026-04-10",
    )
    assert "note" not in request
    assert document["suppressed"] is False
    json.dumps(document)  # the whole document is JSON as it is


def test_export_lists_the_re_permission_mails_sent(session, settings, clock, person, runner):
    from prefsvc.models import RepermissionKind, RepermissionMail

    session.add(
        RepermissionMail(
            contact_id=person.id, anchor=person.window_anchor, kind=RepermissionKind.REQUEST
        )
    )
    session.commit()

    document = rights.export(session, person, settings=settings, now=clock())
    text = runner.invoke(args=["contacts", "export", "ana@example.org", "--format", "text"])

    [mail] = document["repermission_mails"]
    assert (mail["kind"], mail["window_anchor"]) == ("request", "2026-03-11")
    assert "demande pour savoir si nous pouvons continuer à vous informer" in text.stdout


def test_export_is_recorded_in_the_ledger(session, settings, clock, person):
    rights.export(session, person, settings=settings, now=clock())
    session.commit()

    last = session.scalar(select(ConsentEvent).order_by(ConsentEvent.seq.desc()).limit(1))
    assert (last.kind, last.contact_id, last.detail) == (EventKind.EXPORTED, person.id, {})
    assert ledger.verify(session).ok


def test_cli_export_prints_the_document(person, runner):
    result = runner.invoke(args=["contacts", "export", "ANA@example.org"])

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["contact"]["public_id"] == person.public_id
    assert len(document["consent_history"]) == 2
    assert result.stdout.count("\n") > 10  # pretty-printed for a person to read


def test_cli_export_of_an_unknown_address_fails_in_one_line(app, runner):
    result = runner.invoke(args=["contacts", "export", "nobody@example.org"])

    assert result.exit_code != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


# --- rectification ----------------------------------------------------------------------


def test_rectify_returns_old_and_new_and_logs_only_field_names(session, clock, person):
    changes = rights.rectify(
        session,
        person,
        {"first_name": " Anna ", "organisation": "", "language": "nl", "last_name": "Peeters"},
        now=clock(),
        channel="preference-centre",
    )
    session.commit()

    assert changes == {
        "first_name": ("Ana", "Anna"),
        "organisation": ("Haven NV", None),
        "language": ("fr", "nl"),
    }
    assert (person.first_name, person.organisation, person.language) == ("Anna", None, Language.NL)
    last = session.scalar(select(ConsentEvent).order_by(ConsentEvent.seq.desc()).limit(1))
    assert last.kind is EventKind.RECTIFIED
    assert last.detail == {"fields": ["first_name", "language", "organisation"]}
    assert "Anna" not in json.dumps(last.detail) and "Haven" not in json.dumps(last.detail)


def test_rectify_without_a_change_records_nothing(session, clock, person):
    before = session.scalar(select(func.count()).select_from(ConsentEvent))

    assert rights.rectify(session, person, {"first_name": "Ana"}, now=clock(), channel="web") == {}
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "x@example.org"}, "email"),
        ({"language": "de"}, "language"),
        ({"last_name": "x" * 201}, "last_name"),
        ({"first_name": "Ana\r\nBcc: x"}, "first_name"),
    ],
)
def test_rectify_refuses_what_it_cannot_apply(session, clock, person, changes, field):
    with pytest.raises(InvalidInput) as caught:
        rights.rectify(session, person, changes, now=clock(), channel="web")
    assert caught.value.field == field


# --- erasure ----------------------------------------------------------------------------


def test_erasure_removes_personal_data_and_suppresses_the_address(session, settings, clock, person):
    result = rights.erase(session, person, settings=settings, now=clock())
    session.commit()

    assert result.kept == [] and result.reason is None
    assert person.status is ContactStatus.ERASED
    for name in rights.PERSONAL_FIELDS:
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

    rights.erase(session, person, settings=settings, now=clock())
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
    rights.erase(session, person, settings=settings, now=clock())
    session.commit()
    events = session.scalar(select(func.count()).select_from(ConsentEvent))

    again = rights.erase(session, person, settings=settings, now=clock())

    assert again.kept == []
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == events


def test_legal_hold_keeps_what_the_law_needs_and_says_why(session, settings, clock, person):
    person.legal_hold_reason = "invoice 2026/041 unpaid"
    person.legal_hold_until = date(2033, 12, 31)

    result = rights.erase(session, person, settings=settings, now=clock())
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

    result = rights.erase(session, person, settings=settings, now=clock())

    assert (result.kept, result.reason) == ([], None)
    assert person.first_name is None


def test_erased_contact_cannot_be_rectified(session, settings, clock, person):
    rights.erase(session, person, settings=settings, now=clock())

    with pytest.raises(InvalidInput, match="erased"):
        rights.rectify(session, person, {"first_name": "Ana"}, now=clock(), channel="web")


def test_erasure_clears_request_notes_but_keeps_the_register(session, settings, clock, person):
    rights.erase(session, person, settings=settings, now=clock())
    session.commit()

    [request] = session.scalars(select(rights.RightsRequest)).all()
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

    rights.erase(session, person, settings=settings, now=clock())
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


# --- the readable export, rectification by CLI, the register by CLI ----------------------


def test_cli_text_export_is_readable_in_the_persons_language(person, runner):
    result = runner.invoke(args=["contacts", "export", "ana@example.org", "--format", "text"])

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("Toutes les données que nous conservons à votre sujet\n")
    for expected in (
        "Adresse e-mail: ana@example.org",
        "Prénom: Ana",
        "Organisation: Haven NV",
        "Langue: Français",
        "Nous pouvons vous informer jusqu’au: 10 mars 2031",
        "- Promoties: désinscrit",
        "désinscrit (promoties) [one-click]",
        "“Nouveau en mars” (Nieuwe opleidingen): envoyé",
        "accès à vos données: reçue (au plus tard le 10 avril 2026)",
    ):
        assert expected in text, expected
    assert "{" not in text


def test_cli_text_export_can_be_asked_in_another_language(person, runner):
    result = runner.invoke(
        args=["contacts", "export", "ana@example.org", "--format", "text", "--language", "nl"]
    )

    assert result.stdout.startswith("Alle gegevens die we over u bewaren\n")
    assert "Voornaam: Ana" in result.stdout


def test_cli_rectify_mails_an_overview_of_old_and_new(session, person, runner, outbox):
    result = runner.invoke(
        args=[
            "contacts",
            "rectify",
            "ana@example.org",
            "--first-name",
            "Anna",
            "--organisation",
            "",
        ]
    )

    assert result.exit_code == 0, result.output
    assert "first_name: 'Ana' -> 'Anna'" in result.stdout
    [message] = outbox()
    assert message["To"] == "ana@example.org"
    assert message["Subject"] == "Vos données ont été corrigées"
    text = message.get_body(("plain",)).get_content()
    assert "Bonjour Anna," in text
    assert "- Prénom: Ana → Anna" in text
    assert "- Organisation: Haven NV → (vide)" in text
    session.expire_all()
    assert (person.first_name, person.organisation) == ("Anna", None)


def test_rectification_values_cross_the_broker_sealed(settings, clock):
    params = rights.confirmation_params(settings, {"first_name": ("Ana", "Anna")}, now=clock())

    assert "Ana" not in json.dumps(params)
    from prefsvc.mail.tokens import Sealer

    unsealed = Sealer(settings.secret_keys).unseal(
        params["changes"], now=clock(), max_age_seconds=60
    )
    assert unsealed == {"first_name": ["Ana", "Anna"]}


def test_a_stale_rectification_confirmation_is_dropped(session, settings, clock, person, outbox):
    from prefsvc.mail import notices

    params = rights.confirmation_params(settings, {"first_name": ("Ana", "Anna")}, now=clock())
    clock.advance(days=8)

    sent = notices.deliver(
        session,
        settings,
        kind=rights.RECTIFICATION_NOTICE,
        contact_id=person.id,
        params=params,
        now=clock(),
    )

    assert sent is None and outbox() == []


def test_cli_rectify_closes_only_a_verified_request(session, settings, clock, person, runner):
    request = rights.open_request(
        session, RightsKind.RECTIFICATION, now=clock(), settings=settings, contact=person
    )
    session.commit()
    args = ["contacts", "rectify", "ana@example.org", "--last-name", "Janssens"]
    args += ["--request", str(request.id), "--by", "privacy officer"]

    early = runner.invoke(args=args)
    session.expire_all()
    assert early.exit_code != 0 and "verify the requester's identity first" in early.stderr
    assert person.last_name == "Peeters"

    rights.mark_verified(session, request, now=clock(), verification="call-back")
    session.commit()
    done = runner.invoke(args=args)

    assert done.exit_code == 0, done.output
    session.expire_all()
    assert person.last_name == "Janssens"
    assert (request.status, request.handled_by) == (RightsStatus.DONE, "privacy officer")


def test_cli_walks_a_request_through_the_register(session, person, runner, clock):
    opened = runner.invoke(args=["rights", "open", "access", "ana@example.org", "--note", "mail"])
    assert opened.exit_code == 0, opened.output
    request_id = int(opened.stdout.split()[1])
    assert "due 2026-04-10" in opened.stdout  # 30 days after 11 March, the fixture's clock

    refused = runner.invoke(args=["rights", "close", str(request_id), "--by", "lead"])
    verified = runner.invoke(args=["rights", "verify", str(request_id), "--how", "eid"])
    closed = runner.invoke(args=["rights", "close", str(request_id), "--by", "lead"])
    listed = runner.invoke(args=["rights", "list", "--json"])

    assert refused.exit_code != 0 and "verify the requester's identity first" in refused.stderr
    assert verified.exit_code == closed.exit_code == listed.exit_code == 0
    [mine] = [r for r in json.loads(listed.stdout) if r["id"] == request_id]
    assert (mine["status"], mine["verification"], mine["handled_by"]) == ("done", "eid", "lead")
    assert mine["verified_at"] is not None and mine["closed_at"] is not None
    open_only = json.loads(runner.invoke(args=["rights", "list", "--open", "--json"]).stdout)
    assert request_id not in [r["id"] for r in open_only]


# --- legal hold -------------------------------------------------------------------------


def test_set_legal_hold_records_the_change_but_not_its_reason(session, clock):
    ana = make_contact(session, "ana@example.org")
    assert rights.set_legal_hold(
        session, ana, reason="invoice 2026-17", until=date(2033, 1, 1), now=clock()
    )
    assert (ana.legal_hold_reason, ana.legal_hold_until) == ("invoice 2026-17", date(2033, 1, 1))
    event = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == ana.id)).one()
    assert event.detail["legal_hold"] == "set"
    assert "invoice" not in json.dumps(event.detail)
    assert not rights.set_legal_hold(
        session, ana, reason="invoice 2026-17", until=date(2033, 1, 1), now=clock()
    )
    assert ledger.verify(session).ok


def test_lifting_a_legal_hold_lets_erasure_remove_everything(session, clock, settings):
    ana = make_contact(session, "ana@example.org", organisation="Acme")
    rights.set_legal_hold(session, ana, reason="invoice", until=None, now=clock())
    rights.set_legal_hold(session, ana, reason=None, until=None, now=clock())
    result = rights.erase(session, ana, settings=settings, now=clock())
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
        rights.set_legal_hold(session, ana, reason=reason, until=until, now=clock())
    assert caught.value.field == field


def test_an_erased_contact_cannot_be_put_on_hold(session, clock, settings):
    ana = make_contact(session)
    rights.erase(session, ana, settings=settings, now=clock())
    with pytest.raises(InvalidInput):
        rights.set_legal_hold(session, ana, reason="invoice", until=None, now=clock())
