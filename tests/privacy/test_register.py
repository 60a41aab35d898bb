"""The register of data-subject requests: due dates, verification, closing, overdue."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from prefsvc.errors import RequestStateError
from prefsvc.models import (
    RightsStatus,
)
from prefsvc.privacy import register

pytestmark = pytest.mark.all_databases


def test_request_is_due_thirty_days_after_the_brussels_day_it_came_in(session, settings):
    late_evening = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)  # 11 March, 00:30 in Brussels

    request = register.open_request(session, "erasure", now=late_evening, settings=settings)

    assert request.status is RightsStatus.RECEIVED
    assert request.due_on == date(2026, 4, 10)


def test_request_due_days_follow_the_setting(session, settings, clock):
    request = register.open_request(
        session, "access", now=clock(), settings=settings.with_(rights_due_days=10)
    )
    assert request.due_on == date(2026, 3, 20)


def test_request_is_done_only_after_identity_is_verified(session, settings, clock):
    request = register.open_request(session, "access", now=clock(), settings=settings)
    with pytest.raises(RequestStateError, match="verify"):
        register.close(session, request, now=clock(), handled_by="els")

    register.mark_verified(session, request, now=clock(), verification="email-link")
    register.close(session, request, now=clock(), handled_by="els")

    assert (request.status, request.verification, request.handled_by) == (
        RightsStatus.DONE,
        "email-link",
        "els",
    )
    assert request.verified_at == request.closed_at == clock()
    with pytest.raises(RequestStateError):
        register.close(session, request, now=clock(), handled_by="els")


def test_unverified_request_can_be_refused(session, settings, clock):
    request = register.open_request(session, "erasure", now=clock(), settings=settings)

    register.close(session, request, now=clock(), handled_by="els", refused=True, note="no reply")

    assert request.status is RightsStatus.REFUSED
    with pytest.raises(RequestStateError):
        register.mark_verified(session, request, now=clock())


def test_overdue_lists_open_requests_after_their_due_date(session, settings, clock):
    late = register.open_request(session, "access", now=clock(), settings=settings)
    verified = register.open_request(session, "rectification", now=clock(), settings=settings)
    register.mark_verified(session, verified, now=clock())
    done = register.open_request(session, "access", now=clock(), settings=settings)
    register.mark_verified(session, done, now=clock())
    register.close(session, done, now=clock(), handled_by="els")
    session.commit()

    assert register.overdue(session, date(2026, 4, 9)) == []  # due on 9 April: not late yet
    assert register.overdue(session, date(2026, 4, 10)) == [late, verified]


def test_cli_lists_overdue_requests_as_json(session, settings, clock, runner):
    request = register.open_request(session, "erasure", now=clock(), settings=settings)
    session.commit()
    clock.advance(days=31)

    result = runner.invoke(args=["rights", "overdue", "--json"])

    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["id"], row["kind"], row["due_on"]) == (request.id, "erasure", "2026-04-09")


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
