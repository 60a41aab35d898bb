"""One worker job: post an endpoint's leased deliveries and record what came back.

No transaction is held while a receiver answers: the rows are read and signed, the session
rolled back, the posts made, and the answers written in one short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlalchemy.orm import Session

from prefsvc.mail import notices
from prefsvc.models import WebhookEndpoint
from prefsvc.settings import Settings
from prefsvc.webhooks import alerts, delivery, posting

log = logging.getLogger(__name__)


def deliver_job(
    session: Session,
    settings: Settings,
    delivery_ids: Sequence[int],
    lease: str,
    now: Callable[[], datetime],
    *,
    post: delivery.Post | None = None,
) -> delivery.Outcome:
    """Post the deliveries still under ``lease``; disable endpoints failing too long."""
    timeout = settings.webhook_timeout_seconds
    post = post or (lambda url, body, headers: posting.post(url, body, headers, timeout=timeout))
    attempts = delivery.prepare(
        session, delivery_ids, lease=datetime.fromisoformat(lease), now=now()
    )
    session.rollback()
    if not attempts:
        return delivery.Outcome()
    answers = [(attempt, post(attempt.url, attempt.body, attempt.headers)) for attempt in attempts]
    window = timedelta(hours=settings.webhook_retry_hours)
    try:
        outcome = delivery.record(session, answers, now=now(), retry_window=window)
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.info(
        "webhooks: %s delivered, %s failed, %s given up",
        outcome.delivered,
        outcome.failed,
        outcome.given_up,
    )
    for endpoint_id in outcome.disabled:
        _alert(session, settings, endpoint_id, now())
    return outcome


def _alert(session: Session, settings: Settings, endpoint_id: int, now: datetime) -> None:
    """Mail ``WEBHOOK_ALERT_TO`` that an endpoint was disabled (the banner shows it anyway)."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    session.rollback()
    if endpoint is None or not settings.webhook_alert_to:
        return
    notice = alerts.notice(endpoint, hours=settings.webhook_retry_hours)
    try:
        notices.send(
            settings,
            to=parseaddr(settings.webhook_alert_to)[1],
            notice=notice,
            now=now,
            kind="webhook-alert",
        )
    except Exception as exc:  # noqa: BLE001 - the banner still tells them
        log.warning("webhook alert for endpoint %s not sent: %s", endpoint_id, type(exc).__name__)
