"""An endpoint disabled for failing: its alert is held with the disabling, then mailed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from prefsvc.mail import notice_kinds
from prefsvc.queue import outbox as job_outbox
from prefsvc.webhooks import alerts, delivery, endpoints

pytestmark = pytest.mark.all_databases
WINDOW = timedelta(hours=72)


def _failing_for_three_days(session, clock):
    endpoint = endpoints.create(
        session, "https://crm.example.org/hooks?token=s3cret", ["contact.unsubscribed"], now=clock()
    )
    endpoint.failing_since = clock() - WINDOW
    session.commit()
    return endpoint


def _a_500(endpoint, clock) -> list[tuple[delivery.Attempt, delivery.Answer]]:
    attempt = delivery.Attempt(1, endpoint.id, endpoint.url, "msg_x", b"{}", {}, 3, clock())
    return [(attempt, delivery.Answer(500, "receiver broke"))]


def test_the_alert_is_held_in_the_job_outbox_with_the_disabling(session, clock):
    endpoint = _failing_for_three_days(session, clock)

    outcome = delivery.record(
        session, _a_500(endpoint, clock), now=clock(), retry_window=WINDOW, alert=True
    )

    assert outcome.disabled == [endpoint.id]
    assert job_outbox.held(session, "send_notice") == [
        [alerts.KIND, None, {"endpoint": endpoint.id}]
    ]
    session.rollback()  # the disabling is not committed: neither is its alert
    assert job_outbox.held(session, "send_notice") == []
    assert session.get(type(endpoint), endpoint.id).enabled


def test_no_alert_is_held_when_nobody_is_to_be_told(session, clock):
    endpoint = _failing_for_three_days(session, clock)
    delivery.record(session, _a_500(endpoint, clock), now=clock(), retry_window=WINDOW)
    session.commit()
    assert not session.get(type(endpoint), endpoint.id).enabled
    assert job_outbox.held(session, "send_notice") == []


def test_a_held_alert_is_mailed_by_a_worker_naming_the_endpoint_by_id_and_host_only(
    session, settings, clock, outbox
):
    endpoint = _failing_for_three_days(session, clock)
    delivery.record(session, _a_500(endpoint, clock), now=clock(), retry_window=WINDOW, alert=True)
    session.commit()
    [[kind, contact_id, params]] = job_outbox.held(session, "send_notice")
    told = settings.with_(webhook_alert_to="Ops <ops@example.org>")

    notice_kinds.deliver(
        session, told, kind=kind, contact_id=contact_id, params=params, now=clock()
    )

    [mail] = outbox()
    assert mail["To"] == "ops@example.org"
    assert mail["Subject"] == f"Webhook endpoint {endpoint.id} disabled"
    body = mail.get_body().get_content()
    assert "crm.example.org" in body
    assert "s3cret" not in body
    assert "failed for 72 hours and was disabled" in body  # staff read any of the languages
    assert "faalde 72 uur lang en werd uitgeschakeld" in body


def test_an_alert_for_an_endpoint_enabled_again_meanwhile_is_dropped(
    session, settings, clock, outbox
):
    endpoint = _failing_for_three_days(session, clock)
    delivery.record(session, _a_500(endpoint, clock), now=clock(), retry_window=WINDOW, alert=True)
    session.commit()
    endpoints.enable(session, endpoint, now=clock())
    session.commit()
    told = settings.with_(webhook_alert_to="ops@example.org")

    sent = notice_kinds.deliver(
        session,
        told,
        kind=alerts.KIND,
        contact_id=None,
        params={"endpoint": endpoint.id},
        now=clock(),
    )

    assert sent is None
    assert outbox() == []
