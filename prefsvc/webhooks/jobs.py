"""One worker job: post an endpoint's leased deliveries and record what came back.

No transaction is held while a receiver answers: the rows are read and signed, the session
rolled back, the posts made, and the answers written in one short transaction (with the
alert mail of an endpoint it disables, held in the job outbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from prefsvc.settings import Settings
from prefsvc.webhooks import delivery, posting

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
        outcome = delivery.record(
            session,
            answers,
            now=now(),
            retry_window=window,
            alert=bool(settings.webhook_alert_to),
        )
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
    return outcome
