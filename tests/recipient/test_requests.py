"""Rights from the preference centre: corrections at once, copy and erasure after a fresh link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from prefsvc.consent import suppression
from prefsvc.errors import InvalidInput, RequestStateError
from prefsvc.models import ContactStatus, RightsKind, RightsRequest, RightsStatus
from prefsvc.recipient import requests
from tests.factories import make_contact

pytestmark = pytest.mark.all_databases
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


@pytest.fixture
def ana(session):
    contact = make_contact(session, "ana@example.org", organisation="Haven NV")
    session.commit()
    return contact


def _register(session) -> list[tuple[RightsKind, RightsStatus]]:
    return [(r.kind, r.status) for r in session.scalars(select(RightsRequest).order_by("id"))]


def test_a_correction_is_registered_verified_and_closed_at_once(session, settings, ana):
    changed = requests.correct_details(
        session,
        ana,
        {"first_name": "Anna", "organisation": ""},
        settings=settings,
        now=NOW,
        today=TODAY,
    )
    session.commit()

    assert changed == {"first_name": ("Ana", "Anna"), "organisation": ("Haven NV", None)}
    assert (ana.first_name, ana.organisation) == ("Anna", None)
    assert ana.window_anchor == TODAY
    [entry] = session.scalars(select(RightsRequest))
    assert (entry.kind, entry.status) == (RightsKind.RECTIFICATION, RightsStatus.DONE)
    assert (entry.verification, entry.handled_by) == ("preference-link", "self-service")


def test_a_correction_that_changes_nothing_registers_nothing(session, settings, ana):
    changed = requests.correct_details(
        session, ana, {"first_name": "Ana"}, settings=settings, now=NOW, today=TODAY
    )
    assert changed == {}
    assert _register(session) == []
    assert ana.window_anchor == date(2026, 1, 1)


def test_asking_again_reuses_the_waiting_request_of_that_kind(session, settings, ana):
    first = requests.ask_for(session, ana, "access", settings=settings, now=NOW)
    again = requests.ask_for(session, ana, RightsKind.ACCESS, settings=settings, now=NOW)
    erasure = requests.ask_for(session, ana, "erasure", settings=settings, now=NOW)

    assert again.id == first.id and erasure.id != first.id
    assert _register(session) == [
        (RightsKind.ACCESS, RightsStatus.RECEIVED),
        (RightsKind.ERASURE, RightsStatus.RECEIVED),
    ]
    with pytest.raises(InvalidInput):
        requests.ask_for(session, ana, "rectification", settings=settings, now=NOW)


def test_confirming_marks_the_persons_own_request_verified_by_the_email_link(
    session, settings, ana
):
    bo = make_contact(session, "bo@example.org")
    request = requests.ask_for(session, ana, "access", settings=settings, now=NOW)
    with pytest.raises(RequestStateError):
        requests.confirm_request(session, bo, request.id, now=NOW)  # not Bo's to confirm
    assert request.status is RightsStatus.RECEIVED

    later = NOW + timedelta(minutes=5)
    confirmed = requests.confirm_request(session, ana, request.id, now=later)
    assert (confirmed.status, confirmed.verification, confirmed.verified_at) == (
        RightsStatus.VERIFIED,
        "email-link",
        later,
    )
    assert requests.waiting_request(session, ana, request.id) is None
    with pytest.raises(RequestStateError):
        requests.confirm_request(session, ana, request.id, now=later)  # only once


def test_an_unverified_request_is_not_carried_out(session, settings, ana):
    request = requests.ask_for(session, ana, "erasure", settings=settings, now=NOW)
    with pytest.raises(RequestStateError):
        requests.fulfil(session, request, ana, settings=settings, now=NOW)
    assert ana.status is ContactStatus.ACTIVE and ana.email == "ana@example.org"


def test_a_confirmed_copy_is_the_export_and_closes_the_request(session, settings, ana):
    request = requests.ask_for(session, ana, "access", settings=settings, now=NOW)
    requests.confirm_request(session, ana, request.id, now=NOW)

    document = requests.fulfil(session, request, ana, settings=settings, now=NOW)

    assert document["contact"]["email"] == "ana@example.org"
    assert (request.status, request.handled_by) == (RightsStatus.DONE, "self-service")


def test_a_confirmed_erasure_erases_and_suppresses_the_address(session, settings, ana):
    request = requests.ask_for(session, ana, "erasure", settings=settings, now=NOW)
    requests.confirm_request(session, ana, request.id, now=NOW)

    result = requests.fulfil(session, request, ana, settings=settings, now=NOW)
    session.commit()

    assert result.public_id == ana.public_id and result.kept == []
    assert ana.status is ContactStatus.ERASED and ana.email is None
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")
    assert request.status is RightsStatus.DONE
    assert session.scalar(select(func.count()).select_from(RightsRequest)) == 1
