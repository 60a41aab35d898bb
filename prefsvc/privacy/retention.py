"""Retention: after the marketing window plus a grace period, anonymise what marketing kept.

A contact whose window ended ``grace_days`` ago or more loses email, names, organisation and
the like; the contact row (public id, anchor, status ``anonymised``), the ledger and campaign
statistics stay, without personal data. Expiry is not an objection: nothing goes on the
suppression list, and a new basis (a new enrolment) may bring the person back.

Data kept under a legal hold is cleared by a later run, once the hold has ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from prefsvc.consent import changes as consent
from prefsvc.consent import suppression, window
from prefsvc.inbound import intake
from prefsvc.models import Contact, ContactStatus, EventKind, RetentionRun
from prefsvc.people.importing import jobs as import_jobs
from prefsvc.privacy import erasure
from prefsvc.webhooks import delivery as webhook_delivery
from prefsvc.webhooks import outbox as webhook_outbox

WINDOW_EXPIRED = "window_expired"
LEGAL_HOLD_ENDED = "legal_hold_ended"
MARKETING_STATES = (ContactStatus.ACTIVE, ContactStatus.UNSUBSCRIBED)
_CHUNK = 500


@dataclass(frozen=True)
class Candidate:
    """A contact the run anonymises (or would, on a dry run), and why."""

    contact_id: int
    public_id: str
    window_anchor: date
    expired_on: date
    reason: str


@dataclass
class RetentionReport:
    """What a run found and did; ``as_dict`` is the CLI's JSON."""

    run_id: int
    dry_run: bool
    run_on: date
    last_expired_anchor: date
    grace_days: int
    candidates: list[Candidate] = field(default_factory=list)
    anonymised: int = 0
    inbound_deleted: int = 0  # returned messages past INBOUND_KEEP_DAYS
    webhook_deliveries_deleted: int = 0  # the webhook delivery log past WEBHOOK_LOG_DAYS
    import_jobs_deleted: int = 0  # finished import jobs past IMPORT_KEEP_DAYS

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "dry_run": self.dry_run,
            "run_on": self.run_on.isoformat(),
            "last_expired_anchor": self.last_expired_anchor.isoformat(),
            "grace_days": self.grace_days,
            "candidates": len(self.candidates),
            "anonymised": self.anonymised,
            "inbound_deleted": self.inbound_deleted,
            "webhook_deliveries_deleted": self.webhook_deliveries_deleted,
            "import_jobs_deleted": self.import_jobs_deleted,
            "contacts": [
                {
                    "public_id": c.public_id,
                    "window_anchor": c.window_anchor.isoformat(),
                    "expired_on": c.expired_on.isoformat(),
                    "reason": c.reason,
                }
                for c in self.candidates
            ],
        }


def cut_off(*, today: date, years: int, grace_days: int) -> date:
    """Return the latest anchor whose window ended at least ``grace_days`` before ``today``."""
    return window.last_expired_anchor(today - timedelta(days=grace_days), years)


def _due(*, today: date, last_anchor: date) -> ColumnElement[bool]:
    """Select contacts due for anonymisation: one indexable anchor comparison, plus held data."""
    held_data = or_(*(getattr(Contact, name).is_not(None) for name in erasure.HELD_FIELDS))
    hold_ended = or_(Contact.legal_hold_reason.is_(None), Contact.legal_hold_until < today)
    return or_(
        and_(Contact.status.in_(MARKETING_STATES), Contact.window_anchor <= last_anchor),
        and_(Contact.status.not_in(MARKETING_STATES), held_data, hold_ended),
    )


def plan(session: Session, *, today: date, years: int, grace_days: int) -> list[Candidate]:
    """List the contacts a run on ``today`` would anonymise, oldest anchor first."""
    last_anchor = cut_off(today=today, years=years, grace_days=grace_days)
    rows = session.execute(
        select(Contact.id, Contact.public_id, Contact.window_anchor, Contact.status)
        .where(_due(today=today, last_anchor=last_anchor))
        .order_by(Contact.window_anchor, Contact.id)
    )
    return [
        Candidate(
            contact_id=row.id,
            public_id=row.public_id,
            window_anchor=row.window_anchor,
            expired_on=window.expires_on(row.window_anchor, years),
            reason=WINDOW_EXPIRED if row.status in MARKETING_STATES else LEGAL_HOLD_ENDED,
        )
        for row in rows
    ]


def anonymise(
    session: Session,
    contact: Contact,
    *,
    now: datetime,
    today: date,
    reason: str = WINDOW_EXPIRED,
    run_id: int | None = None,
    address_key: str | None = None,
) -> list[str]:
    """Remove the contact's personal data (not suppressed); return the fields a hold keeps.

    With ``address_key`` (the suppression key) the ``contact.erased`` webhook carries the
    keyed hash of the address, as an erasure on request does: a CRM matches it without
    being sent the address. The address is not put on the suppression list.
    """
    held = erasure.hold_active(contact, today)
    keep = [name for name in erasure.HELD_FIELDS if held and getattr(contact, name) is not None]
    address_hash = None
    if address_key and contact.email:
        address_hash = suppression.address_hash(address_key, contact.email)
    erasure.remove_personal_data(session, contact, keep=keep)
    if contact.status in MARKETING_STATES:
        contact.status = ContactStatus.ANONYMISED
    consent.record(
        session,
        contact,
        EventKind.ANONYMISED,
        channel="retention",
        now=now,
        detail={"reason": reason, "run": run_id, "kept": keep},
    )
    if address_hash is not None:
        webhook_outbox.note_erased_address(session, contact.id, address_hash)
    return keep


def run(
    session: Session,
    *,
    today: date,
    now: datetime,
    years: int,
    grace_days: int,
    dry_run: bool,
    inbound_keep_days: int | None = None,
    webhook_log_days: int | None = None,
    import_keep_days: int | None = None,
    import_files: Path | None = None,
    address_key: str | None = None,
) -> RetentionReport:
    """Anonymise every contact due on ``today`` and record the run; a dry run changes nothing.

    Even a dry run is recorded in ``retention_runs`` (with ``anonymised`` 0), so the register
    shows every time someone looked. With ``inbound_keep_days``, returned mail (bounces,
    complaints: raw messages quoting addresses) older than that is deleted too; with
    ``webhook_log_days``, so are the webhook deliveries delivered or given up before that
    (their payloads name contacts), a chunk at a time; with ``import_keep_days``, import jobs
    finished before that, their row problems and any upload still under ``import_files``.
    """
    last_anchor = cut_off(today=today, years=years, grace_days=grace_days)
    candidates = plan(session, today=today, years=years, grace_days=grace_days)
    record = RetentionRun(
        started_at=now,
        run_on=today,
        last_expired_anchor=last_anchor,
        grace_days=grace_days,
        dry_run=dry_run,
        candidates=len(candidates),
        anonymised=0,
    )
    session.add(record)
    session.flush()
    report = RetentionReport(
        run_id=record.id,
        dry_run=dry_run,
        run_on=today,
        last_expired_anchor=last_anchor,
        grace_days=grace_days,
        candidates=candidates,
    )
    if dry_run:
        return report
    if inbound_keep_days is not None:
        report.inbound_deleted = intake.purge(session, now=now, keep_days=inbound_keep_days)
    if webhook_log_days is not None:
        report.webhook_deliveries_deleted = webhook_delivery.prune(
            session, now=now, keep_days=webhook_log_days
        )
    if import_keep_days is not None:
        report.import_jobs_deleted = import_jobs.prune(
            session, import_files, now=now, keep_days=import_keep_days
        )
    reasons = {c.contact_id: c.reason for c in candidates}
    # Lock every contact before the first ledger append: writers elsewhere take a contact's
    # row first and the ledger head second, and this keeps to the same order.
    locked: list[Contact] = []
    ids = list(reasons)
    for start in range(0, len(ids), _CHUNK):
        locked.extend(
            session.scalars(
                select(Contact)
                .where(
                    Contact.id.in_(ids[start : start + _CHUNK]),
                    _due(today=today, last_anchor=last_anchor),  # renewed meanwhile: skip
                )
                .options(selectinload(Contact.subscriptions))
                .order_by(Contact.id)
                .with_for_update(of=Contact)
            )
        )
    for contact in locked:
        anonymise(
            session,
            contact,
            now=now,
            today=today,
            reason=reasons[contact.id],
            run_id=record.id,
            address_key=address_key,
        )
    record.anonymised = report.anonymised = len(locked)
    return report
