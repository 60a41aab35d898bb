"""Periodic jobs: recover dead workers' deliveries, re-permission mail, daily retention.

Run exactly one ``prefsvc scheduler`` per installation. Each job is a plain function taking
the session and an explicit ``now``, so tests call them directly with an injected clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.campaigns import claims, control
from prefsvc.consent import repermission
from prefsvc.models import Delivery, RepermissionKind, RetentionRun
from prefsvc.privacy import retention
from prefsvc.recipient import signup
from prefsvc.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    recovered: int = 0
    launched: list[int] | None = None
    retention_ran: bool = False
    anonymised: int = 0
    repermission_requests: int = 0
    repermission_reminders: int = 0
    signup_requests_deleted: int = 0


def recover(
    session: Session, settings: Settings, *, now: datetime, enqueue: Callable[[list[int]], None]
) -> int:
    """Re-queue deliveries stuck in ``sending`` and hand them to the workers again."""
    ids = claims.recover_stuck(
        session, now=now, older_than=timedelta(seconds=settings.stuck_after_seconds)
    )
    if ids:
        by_campaign: dict[int, list[int]] = {}
        for delivery_id, campaign_id in session.execute(
            select(Delivery.id, Delivery.campaign_id).where(Delivery.id.in_(ids))
        ):
            by_campaign.setdefault(campaign_id, []).append(delivery_id)
        for campaign_ids in by_campaign.values():
            for i in range(0, len(campaign_ids), settings.batch_size):
                enqueue(campaign_ids[i : i + settings.batch_size])
        log.warning("recovered %d deliveries stuck in sending", len(ids))
    return len(ids)


def retention_due(session: Session, *, today: date) -> bool:
    """Tell whether today's (non-dry) retention run has not happened yet."""
    last = session.scalar(
        select(RetentionRun.run_on)
        .where(RetentionRun.dry_run.is_(False))
        .order_by(RetentionRun.run_on.desc())
        .limit(1)
    )
    return last is None or last < today


def tick(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    enqueue: Callable[[list[int]], None],
    notify: Callable[[str, int, dict[str, Any]], None],
    launch: Callable[[int], object] | None = None,
) -> TickReport:
    """Run whatever is due at ``now``.

    ``enqueue(delivery_ids)`` queues a batch; ``notify(kind, contact_id, params)`` queues a
    notice; ``launch(campaign_id)`` starts a scheduled campaign (without it, none is started).
    Re-permission mail is checked on every tick: the ``repermission_mails`` table, not the
    clock, keeps it to one of each per window, so a scheduler that was down catches up.
    """
    report = TickReport(recovered=recover(session, settings, now=now, enqueue=enqueue))
    report.launched = []
    if launch is not None:
        for campaign_id in control.due(session, now=now):
            launch(campaign_id)
            report.launched.append(campaign_id)
    mails = repermission.send_due(session, settings, now=now, notify=notify)
    report.repermission_requests = sum(m.kind is RepermissionKind.REQUEST for m in mails)
    report.repermission_reminders = len(mails) - report.repermission_requests
    # Unconfirmed sign-ups are deleted as soon as their link expires, not once a day.
    report.signup_requests_deleted = signup.purge_expired(session, now=now)
    session.commit()
    today = now.astimezone(settings.timezone).date()
    if retention_due(session, today=today):
        result = retention.run(
            session,
            today=today,
            now=now,
            years=settings.marketing_window_years,
            grace_days=settings.retention_grace_days,
            dry_run=False,
            inbound_keep_days=settings.inbound_keep_days,
        )
        session.commit()
        report.retention_ran = True
        report.anonymised = result.anonymised
        log.info("retention run: %d contacts anonymised", result.anonymised)
    return report
