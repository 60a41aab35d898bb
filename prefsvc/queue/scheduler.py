"""Periodic jobs: recover dead workers' deliveries and lost jobs, re-permission mail, retention,
and the returned-mail mailbox (``INBOUND_IMAP_URL``).

Run exactly one ``prefsvc scheduler`` per installation (the demo runs one in process). Each job
is a plain function taking the session and an explicit ``now``, so tests call them directly
with an injected clock. Every job the tick makes (batches, notices) is held in the job outbox
in the tick's own transaction, and each tick records its heartbeat: the admin shows when the
scheduler last ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.campaigns import campaigns, claims, control
from prefsvc.consent import repermission
from prefsvc.inbound import imap, intake
from prefsvc.mail import kit, notices
from prefsvc.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    RepermissionKind,
    RetentionRun,
)
from prefsvc.people.importing import jobs as import_jobs
from prefsvc.privacy import retention
from prefsvc.queue import heartbeats, outbox
from prefsvc.recipient import signup
from prefsvc.settings import Settings

log = logging.getLogger(__name__)
# The admin warns when the scheduler has not run for this long.
SCHEDULER_LATE = timedelta(minutes=5)
# The heartbeat row that says when the scheduler last polled ``INBOUND_IMAP_URL``.
IMAP_POLL_NAME = "inbound-imap"
# Heartbeat rows of workers dead this long are deleted.
FORGET_WORKERS_AFTER = timedelta(days=1)


@dataclass
class TickReport:
    recovered: int = 0
    requeued: int = 0
    imports_recovered: int = 0
    launched: list[int] | None = None
    retention_ran: bool = False
    anonymised: int = 0
    repermission_requests: int = 0
    repermission_reminders: int = 0
    signup_requests_deleted: int = 0
    imap_polled: bool = False
    imap_taken: int = 0


def recover(session: Session, settings: Settings, *, now: datetime) -> int:
    """Re-queue deliveries whose worker died (lease lapsed), with new batch jobs; commit."""
    ids = claims.recover_stuck(session, now=now, lease=timedelta(seconds=settings.lease_seconds))
    if ids:
        by_campaign: dict[int, list[int]] = {}
        for delivery_id, campaign_id in session.execute(
            select(Delivery.id, Delivery.campaign_id).where(claims.ids_among(session, ids))
        ):
            by_campaign.setdefault(campaign_id, []).append(delivery_id)
        for campaign_id, campaign_ids in by_campaign.items():
            campaigns.hold_batches(
                session, campaign_id, sorted(campaign_ids), batch_size=settings.batch_size, now=now
            )
        log.warning("recovered %d deliveries of dead workers", len(ids))
    session.commit()
    return len(ids)


def recover_imports(session: Session, settings: Settings, *, now: datetime) -> int:
    """Hold new jobs for imports whose worker died (lease lapsed) or whose job was lost; commit."""
    ids = import_jobs.recover(
        session,
        now=now,
        lease=timedelta(seconds=settings.lease_seconds),
        grace=timedelta(seconds=settings.requeue_after_seconds),
    )
    if ids:
        log.warning("import jobs %s had no live worker: queued again", ids)
    session.commit()
    return len(ids)


def stalled(session: Session, *, now: datetime, grace: timedelta) -> list[int]:
    """Return the sending campaigns whose queued deliveries have no live job.

    No delivery claimed, none in ``sending`` and no job made for them within ``grace``: their
    jobs were lost (a broker restarted empty, an in-process demo killed). While batch jobs
    still wait in the outbox for a broker, nothing is stalled: they are on their way.
    """
    if outbox.held(session, campaigns.SEND_BATCH, limit=1):
        return []
    cutoff = now - grace
    of_campaign = Delivery.campaign_id == Campaign.id
    busy = (
        select(Delivery.id)
        .where(
            of_campaign,
            (Delivery.status == DeliveryStatus.SENDING) | (Delivery.claimed_at >= cutoff),
        )
        .exists()
    )
    waiting = select(Delivery.id).where(of_campaign, Delivery.status == DeliveryStatus.QUEUED)
    return list(
        session.scalars(
            select(Campaign.id).where(
                Campaign.status == CampaignStatus.SENDING,
                Campaign.jobs_at.is_(None) | (Campaign.jobs_at < cutoff),
                ~busy,
                waiting.exists(),
            )
        )
    )


def requeue_stalled(session: Session, settings: Settings, *, now: datetime) -> int:
    """Hold new jobs for the queued deliveries of stalled campaigns; return how many."""
    count = 0
    for campaign_id in stalled(
        session, now=now, grace=timedelta(seconds=settings.requeue_after_seconds)
    ):
        requeued = campaigns.requeue(session, campaign_id, batch_size=settings.batch_size, now=now)
        log.warning(
            "campaign %s had no live job: %d deliveries queued again", campaign_id, requeued
        )
        count += requeued
    return count


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
    launch: Callable[[int], object] | None = None,
) -> TickReport:
    """Run whatever is due at ``now``, then record that the scheduler ran; commits.

    ``launch(campaign_id)`` starts a scheduled campaign (without it, none is started).
    Re-permission mail is checked on every tick: the ``repermission_mails`` table, not the
    clock, keeps it to one of each per window, so a scheduler that was down catches up.
    """
    report = TickReport(recovered=recover(session, settings, now=now))
    report.launched = []
    if launch is not None:
        for campaign_id in control.due(session, now=now):
            launch(campaign_id)
            report.launched.append(campaign_id)
    report.requeued = requeue_stalled(session, settings, now=now)
    report.imports_recovered = recover_imports(session, settings, now=now)

    def hold(kind: str, contact_id: int, params: dict[str, Any]) -> None:
        notices.hold(session, kind, contact_id, params, now=now)

    mails = repermission.send_due(session, settings, now=now, notify=hold)
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
            webhook_log_days=settings.webhook_log_days,
            import_keep_days=settings.import_keep_days,
            import_files=import_jobs.folder(settings.instance_path),
            address_key=settings.suppression_key,
        )
        session.commit()
        report.retention_ran = True
        report.anonymised = result.anonymised
        log.info("retention run: %d contacts anonymised", result.anonymised)
    heartbeats.beat(session, heartbeats.SCHEDULER_NAME, heartbeats.SCHEDULER, now=now)
    heartbeats.prune(session, now=now, older_than=FORGET_WORKERS_AFTER)
    session.commit()
    # Last: a slow or failing mail server delays nothing else of the tick.
    if imap_due(session, settings, now=now):
        report.imap_polled = True
        report.imap_taken = poll_imap(session, settings, now=now)
    return report


def imap_due(session: Session, settings: Settings, *, now: datetime) -> bool:
    """Tell whether ``INBOUND_IMAP_URL`` is set and not polled within ``INBOUND_IMAP_SECONDS``."""
    if not settings.inbound_imap_url:
        return False
    last = heartbeats.last(session, IMAP_POLL_NAME)
    return last is None or now - last >= timedelta(seconds=settings.inbound_imap_seconds)


def poll_imap(session: Session, settings: Settings, *, now: datetime) -> int:
    """Take the mailbox's returned mail through intake (one commit each); return how many.

    The attempt is recorded first, so a server that is down is tried again only after
    ``INBOUND_IMAP_SECONDS``; its failure is logged (the host and the reason, never the
    user, password or a message) and the next tick tries again.
    """
    heartbeats.beat(session, IMAP_POLL_NAME, heartbeats.SCHEDULER, now=now)
    session.commit()
    mailbox = imap.Mailbox.from_url(settings.inbound_imap_url)
    taking = intake.Intake.from_settings(settings, kit.mail_domain(settings))
    today = now.astimezone(settings.timezone).date()

    def receive(raw: bytes) -> None:
        try:
            intake.receive(session, raw, recipient=None, now=now, today=today, intake=taking)
            session.commit()
        except Exception:
            session.rollback()
            raise

    try:
        polled = imap.poll(mailbox, receive)
    except Exception as exc:  # noqa: BLE001 - the other periodic jobs go on regardless
        log.warning("IMAP poll of %s failed: %s", mailbox.host, _failure(exc))
        return 0
    if polled.taken or polled.left:
        log.info("IMAP poll: %d messages taken, %d left for later", polled.taken, polled.left)
    return polled.taken


def _failure(exc: BaseException) -> str:
    """The reason of a failed poll without the server's own words (they may name the user)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def last_run(session: Session) -> datetime | None:
    """Return when the scheduler last finished a tick (None: never)."""
    return heartbeats.last(session, heartbeats.SCHEDULER_NAME)


def late(last: datetime | None, *, now: datetime) -> bool:
    """Tell whether the scheduler has not run for ``SCHEDULER_LATE`` (or never)."""
    return last is None or now - last > SCHEDULER_LATE
