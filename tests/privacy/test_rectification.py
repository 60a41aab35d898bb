"""Rectification: corrections, the ledger without values, the sealed old -> new overview."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from prefsvc.errors import InvalidInput
from prefsvc.mail import notice_kinds
from prefsvc.models import (
    ConsentEvent,
    EventKind,
    Language,
    RightsKind,
    RightsStatus,
)
from prefsvc.privacy import rectification, register

pytestmark = pytest.mark.all_databases


def test_rectify_returns_old_and_new_and_logs_only_field_names(session, clock, person):
    changes = rectification.rectify(
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

    assert (
        rectification.rectify(session, person, {"first_name": "Ana"}, now=clock(), channel="web")
        == {}
    )
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
        rectification.rectify(session, person, changes, now=clock(), channel="web")
    assert caught.value.field == field


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
    params = rectification.confirmation_params(
        settings, {"first_name": ("Ana", "Anna")}, now=clock()
    )

    assert "Ana" not in json.dumps(params)
    from prefsvc.mail.tokens import Sealer

    unsealed = Sealer(settings.secret_keys).unseal(
        params["changes"], now=clock(), max_age_seconds=60
    )
    assert unsealed == {"first_name": ["Ana", "Anna"]}


def test_a_stale_rectification_confirmation_is_dropped(session, settings, clock, person, outbox):
    params = rectification.confirmation_params(
        settings, {"first_name": ("Ana", "Anna")}, now=clock()
    )
    clock.advance(days=8)

    sent = notice_kinds.deliver(
        session,
        settings,
        kind=rectification.NOTICE,
        contact_id=person.id,
        params=params,
        now=clock(),
    )

    assert sent is None and outbox() == []


def test_cli_rectify_closes_only_a_verified_request(session, settings, clock, person, runner):
    request = register.open_request(
        session, RightsKind.RECTIFICATION, now=clock(), settings=settings, contact=person
    )
    session.commit()
    args = ["contacts", "rectify", "ana@example.org", "--last-name", "Janssens"]
    args += ["--request", str(request.id), "--by", "privacy officer"]

    early = runner.invoke(args=args)
    session.expire_all()
    assert early.exit_code != 0 and "verify the requester's identity first" in early.stderr
    assert person.last_name == "Peeters"

    register.mark_verified(session, request, now=clock(), verification="call-back")
    session.commit()
    done = runner.invoke(args=args)

    assert done.exit_code == 0, done.output
    session.expire_all()
    assert person.last_name == "Janssens"
    assert (request.status, request.handled_by) == (RightsStatus.DONE, "privacy officer")
