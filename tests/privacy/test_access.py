"""Access: the export of everything held about a person, as JSON and as readable text."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from prefsvc.consent import ledger
from prefsvc.models import (
    ConsentEvent,
    EventKind,
)
from prefsvc.privacy import access

pytestmark = pytest.mark.all_databases


def test_export_holds_everything_about_the_person(session, settings, clock, person):
    document = access.export(session, person, settings=settings, now=clock())

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

    document = access.export(session, person, settings=settings, now=clock())
    text = runner.invoke(args=["contacts", "export", "ana@example.org", "--format", "text"])

    [mail] = document["repermission_mails"]
    assert (mail["kind"], mail["window_anchor"]) == ("request", "2026-03-11")
    assert "demande pour savoir si nous pouvons continuer à vous informer" in text.stdout


def test_export_is_recorded_in_the_ledger(session, settings, clock, person):
    access.export(session, person, settings=settings, now=clock())
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
