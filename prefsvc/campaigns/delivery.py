"""Deliver batches: claim, re-check, render, sign, send, record; safe with many workers.

A batch is a list of delivery ids. Its rows are claimed first (``claims``: of two workers
racing for the same rows only one wins), so a delivery is never sent twice in a normal run.
The steps: claim, read the rows and their campaigns, settle each row (release, exclude, defer,
render, send), write the results back as they come, finish. Results are committed every
``WRITE_BACK_EVERY`` messages, so a killed worker re-sends at most what it had in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from prefsvc.campaigns import audience, campaigns, claims
from prefsvc.consent import suppression
from prefsvc.errors import TemporaryBatchFailure
from prefsvc.inbound import policy
from prefsvc.mail import clicks, kit, rate_limits
from prefsvc.mail.limits import Limits
from prefsvc.mail.messages import MessageBuilder
from prefsvc.mail.rendering import CompiledVariant, Footer, RecipientContext, render
from prefsvc.mail.transport import (
    DeliveryError,
    PermanentFailure,
    TemporaryFailure,
    Transport,
)
from prefsvc.models import (
    LANGUAGES,
    Campaign,
    CampaignStatus,
    Contact,
    Delivery,
    DeliveryStatus,
    Language,
    Subscription,
)
from prefsvc.settings import Settings

log = logging.getLogger(__name__)

# The result of every message handed to SMTP is committed before the next is sent: a killed
# worker re-sends at most one message per thread (the one whose result was not yet committed),
# 16 for the default 2 processes x 8 threads, under 1 % of any campaign over 1,600 people.
# PostgreSQL commits them without waiting for the WAL flush (synchronous_commit=off: cheap; a
# worker crash loses nothing, a database server crash at most the last ~200 ms of results).
WRITE_BACK_EVERY = 1
_deliveries = Delivery.__table__
RECORD_OUTCOME = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        reason=bindparam("b_reason"),
        sent_at=bindparam("b_sent_at"),
        smtp_code=bindparam("b_code"),
        smtp_text=bindparam("b_text"),
    )
)
# Failed reason of a delivery whose message could not be rendered for that contact's data.
UNRENDERABLE = "unrenderable"
# A thread sleeps at most this long for a rate-limit slot; a later slot sends the delivery back
# to the queue (re-queued by the actor with that delay) so the thread can serve other domains.
LONGEST_RATE_WAIT = 2.0


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    retry: int = 0
    skipped: int = 0
    deferred: list[int] = field(default_factory=list)  # rate limit: handed back for later
    defer_seconds: float = 0.0


def deliver(
    session: Session,
    delivery_ids: list[int],
    *,
    settings: Settings,
    now: Callable[[], datetime],
    transport: Transport,
    final_attempt: bool = False,
    rate_limiter: rate_limits.Limiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    owner: str | None = None,
) -> BatchResult:
    """Claim, re-check and send a batch; raise TemporaryBatchFailure if some should be retried.

    ``owner`` is the worker process's heartbeat name: the claims are its leases (``claims``).

    Deliveries the rate limits do not let go soon are handed back as ``queued`` and listed in
    ``result.deferred``; the caller queues them again after ``result.defer_seconds``.
    """
    rate_limiter = rate_limiter if rate_limiter is not None else kit.limiter(settings)
    result = BatchResult()
    started = now()
    claimed = claims.claim(
        session,
        delivery_ids,
        now=started,
        lease=timedelta(seconds=settings.lease_seconds),
        owner=owner,
    )
    result.skipped = len(delivery_ids) - len(claimed)
    in_flight_elsewhere = claims.still_sending(session, set(delivery_ids) - set(claimed))
    if not claimed:
        claims.retry_if_in_flight(in_flight_elsewhere, settings)
        return result
    batch = _read(session, claimed, settings, today=started.astimezone(settings.timezone).date())
    sending = _Sending(
        settings=settings,
        now=now,
        transport=transport,
        final_attempt=final_attempt,
        rate_limiter=rate_limiter,
        sleep=sleep,
        result=result,
    )
    _send_all(session, batch, sending)
    _finish(session, batch.snapshots, now=now, result=result)
    if result.retry:
        raise TemporaryBatchFailure(f"{result.retry} deliveries will be retried")
    claims.retry_if_in_flight(in_flight_elsewhere, settings)
    return result


# --- read the rows and their campaigns -----------------------------------------------------


@dataclass(frozen=True)
class _CampaignSnapshot:
    """What a batch needs of its campaign, read once (rows are expired by each commit)."""

    status: CampaignStatus
    topic_id: int
    # Per contact language, whatever the variant: the footer and List-Id name the topic as
    # the reader knows it.
    footers: dict[str, Footer]
    list_ids: dict[str, str]
    variants: dict[str, CompiledVariant]
    fallback: CompiledVariant | None  # for contacts whose language has no variant
    served: frozenset[Language] | None  # contact languages it reaches (None: all)
    feedback_id: str | None  # None without BOUNCE_DOMAIN


@dataclass(frozen=True)
class _Batch:
    """The claimed rows with what they are re-checked against, read in one transaction."""

    rows: list[Any]
    snapshots: dict[int, _CampaignSnapshot]
    suppressed: set[str]
    today: date


def _snapshot(session: Session, campaign_id: int, settings: Settings) -> _CampaignSnapshot:
    campaign = session.get(Campaign, campaign_id)
    topic = campaign.topic
    sender = kit.identity(settings)
    bounds = Limits.from_settings(settings)
    tracking = clicks.tracking(
        campaign, base_url=settings.base_url, secret_keys=settings.secret_keys
    )
    variants = {
        v.language.value: kit.compiled(
            v, topic.name_in(v.language), bounds, tracking, identity=sender
        )
        for v in campaign.variants
    }
    fallback = campaign.fallback_language
    return _CampaignSnapshot(
        status=campaign.status,
        topic_id=topic.id,
        footers={lang: kit.footer(lang, topic.name_in(lang)) for lang in LANGUAGES},
        list_ids={lang: kit.list_id(settings, topic, lang) for lang in LANGUAGES},
        variants=variants,
        fallback=variants.get(fallback.value) if fallback is not None else None,
        served=audience.served(campaign),
        feedback_id=kit.feedback_id(settings, str(campaign.id), topic.slug, "campaign"),
    )


def _read(session: Session, claimed: list[int], settings: Settings, *, today: date) -> _Batch:
    """Read the claimed rows, their campaigns and suppressions; end the read transaction."""
    rows = session.execute(
        select(
            Delivery.id.label("delivery_id"),
            Delivery.campaign_id,
            Contact.public_id,
            Contact.email,
            Contact.first_name,
            Contact.last_name,
            Contact.organisation,
            Contact.language,
            Contact.status,
            Contact.window_anchor,
            Contact.paused_until,
            Contact.bounced_at,
            Contact.complained_at,
            Subscription.status.label("subscription_status"),
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .outerjoin(
            Subscription,
            (Subscription.contact_id == Contact.id) & (Subscription.topic_id == Campaign.topic_id),
        )
        .where(claims.ids_among(session, claimed))
        .order_by(Delivery.id)
    ).all()
    snapshots = {c: _snapshot(session, c, settings) for c in {r.campaign_id for r in rows}}
    suppressed = suppression.suppressed_among(
        session, settings.suppression_key, [r.email for r in rows if r.email]
    )
    session.commit()  # end the read transaction; nothing below holds locks while sending
    return _Batch(rows=rows, snapshots=snapshots, suppressed=suppressed, today=today)


# --- decide per row: release, exclude, defer, render, send ---------------------------------


@dataclass
class _Sending:
    """What every row of one ``deliver`` call needs, and the tally it keeps."""

    settings: Settings
    now: Callable[[], datetime]
    transport: Transport
    final_attempt: bool
    rate_limiter: rate_limits.Limiter
    sleep: Callable[[float], None]
    result: BatchResult
    mailer: MessageBuilder = field(init=False)

    def __post_init__(self) -> None:
        self.mailer = kit.builder(self.settings)

    def settle(self, row: Any, batch: _Batch) -> tuple[dict, bool]:
        """Return the row's outcome, and whether a message was handed to the transport."""
        snap = batch.snapshots[row.campaign_id]
        if snap.status is not CampaignStatus.SENDING:
            return _release(row.delivery_id, snap.status), False
        reason = self._exclusion(row, batch, snap)
        if reason is not None:
            self.result.excluded[reason] = self.result.excluded.get(reason, 0) + 1
            return _outcome(row.delivery_id, DeliveryStatus.EXCLUDED, reason=reason), False
        slot = self.rate_limiter.reserve(
            row.email.rpartition("@")[2].lower(), max_wait=LONGEST_RATE_WAIT
        )
        if not slot.granted:
            self.result.deferred.append(row.delivery_id)
            self.result.defer_seconds = max(self.result.defer_seconds, slot.wait)
            return _outcome(row.delivery_id, DeliveryStatus.QUEUED), False
        if slot.wait > 0:
            self.sleep(slot.wait)
        try:
            sender, message = self._message(row, snap)
        except Exception as exc:  # noqa: BLE001 - a template that breaks on this person's data
            # Nothing was sent: fail this delivery alone, keep the error for the campaign's
            # figures (not the log: a template error may quote the person's data).
            log.warning("delivery %d cannot be rendered: %s", row.delivery_id, type(exc).__name__)
            self.result.failed += 1
            error = DeliveryError(None, f"{type(exc).__name__}: {exc}")
            return _failed(row.delivery_id, error, UNRENDERABLE), False
        return self._send(row, sender, message), True

    def _exclusion(self, row: Any, batch: _Batch, snap: _CampaignSnapshot) -> str | None:
        """Re-check the contact as the audience would today, suppression list included."""
        reason = audience.reason_for(
            row,
            row.subscription_status,
            on=batch.today,
            years=self.settings.marketing_window_years,
            languages=snap.served,
        )
        if reason is None and row.email in batch.suppressed:
            reason = audience.SUPPRESSED
        return reason

    def _message(self, row: Any, snap: _CampaignSnapshot) -> tuple[str, bytes]:
        """Render, build and sign this person's message; return it with its envelope sender."""
        sender, mailto = kit.delivery_envelope(self.settings, row.delivery_id)
        unsubscribe_url, preferences_url = kit.links(self.settings, row.public_id, snap.topic_id)
        rendered = render(
            snap.variants.get(row.language.value) or snap.fallback,
            contact=RecipientContext(
                email=row.email,
                first_name=row.first_name,
                last_name=row.last_name,
                organisation=row.organisation,
                language=row.language.value,
            ),
            unsubscribe_url=unsubscribe_url,
            preferences_url=preferences_url,
            footer=snap.footers[row.language.value],
        )
        _, message = self.mailer.campaign_message(
            to=row.email,
            rendered=rendered,
            unsubscribe_url=unsubscribe_url,
            list_id=snap.list_ids[row.language.value],
            now=self.now(),
            unsubscribe_mailto=mailto,
            feedback_id=snap.feedback_id,
        )
        return sender, message

    def _send(self, row: Any, sender: str, message: bytes) -> dict:
        """Hand the message to the transport; a temporary failure is retried unless final."""
        try:
            self.transport.send(sender=sender, recipients=[row.email], message=message)
        except PermanentFailure as exc:
            self.result.failed += 1
            return _failed(row.delivery_id, exc, "rejected")
        except TemporaryFailure as exc:
            if self.final_attempt:
                self.result.failed += 1
                return _failed(row.delivery_id, exc, "retries_exhausted")
            self.result.retry += 1
            return _outcome(row.delivery_id, DeliveryStatus.QUEUED, error=exc)
        self.result.sent += 1
        return _outcome(row.delivery_id, DeliveryStatus.SENT, sent_at=self.now())


def _outcome(
    delivery_id: int,
    status: DeliveryStatus,
    *,
    reason: str | None = None,
    sent_at: datetime | None = None,
    error: DeliveryError | None = None,
) -> dict:
    """One row of RECORD_OUTCOME: every key always present, so one executemany takes them all."""
    return {
        "b_id": delivery_id,
        "b_status": status,
        "b_reason": reason,
        "b_sent_at": sent_at,
        "b_code": error.code if error is not None else None,
        "b_text": (error.text or "")[:1000] if error is not None else None,
    }


def _release(delivery_id: int, status: CampaignStatus) -> dict:
    """Hand a claimed delivery back (paused campaign) or close it (cancelled campaign)."""
    if status is CampaignStatus.CANCELLED:
        return _outcome(delivery_id, DeliveryStatus.EXCLUDED, reason="cancelled")
    return _outcome(delivery_id, DeliveryStatus.QUEUED)


def _failed(delivery_id: int, exc: DeliveryError, reason: str) -> dict:
    return _outcome(delivery_id, DeliveryStatus.FAILED, reason=reason, error=exc)


# --- write back, finish --------------------------------------------------------------------


def _send_all(session: Session, batch: _Batch, sending: _Sending) -> None:
    """Settle every row, writing results back as they come; on a crash keep what is known."""
    pending: list[dict] = []
    handled: set[int] = set()
    relaxed_commit = session.get_bind().dialect.name == "postgresql"

    def write_back() -> None:
        if pending:
            if relaxed_commit:
                session.execute(text("SET LOCAL synchronous_commit = off"))
            session.execute(RECORD_OUTCOME, pending)
            _act_on_refusals(session, pending, sending)
            session.commit()
            pending.clear()

    try:
        for row in batch.rows:
            handled.add(row.delivery_id)
            outcome, handed_over = sending.settle(row, batch)
            pending.append(outcome)
            if handed_over and len(pending) >= WRITE_BACK_EVERY:
                write_back()
        write_back()
    except Exception:
        # Keep what was really sent; hand everything untouched back to the queue.
        session.rollback()
        untouched = [r.delivery_id for r in batch.rows if r.delivery_id not in handled]
        _salvage(session, pending, untouched)
        raise


def _act_on_refusals(session: Session, pending: list[dict], sending: _Sending) -> None:
    """A 5xx at RCPT or DATA counts as a bounce report would (5.1.1 hard, 5.7.1 policy...)."""
    refusals = [
        (p["b_id"], p["b_code"], p["b_text"])
        for p in pending
        if p["b_reason"] == "rejected" and (p["b_code"] or 0) >= 500
    ]
    if refusals:
        now = sending.now()
        policy.smtp_refusals(
            session,
            refusals,
            now=now,
            today=now.astimezone(sending.settings.timezone).date(),
            rules=policy.Rules.from_settings(sending.settings),
        )


def _salvage(session: Session, pending: list[dict], untouched: list[int]) -> None:
    try:
        if pending:
            session.execute(RECORD_OUTCOME, pending)
        if untouched:
            claims.hand_back(session, untouched)
        session.commit()
    except Exception:  # noqa: BLE001 - the database itself may be gone; recover_stuck will help
        session.rollback()
        log.warning("could not hand %d deliveries back after a failure", len(untouched))


def _finish(
    session: Session,
    snapshots: dict[int, _CampaignSnapshot],
    *,
    now: Callable[[], datetime],
    result: BatchResult,
) -> None:
    """Mark campaigns with nothing left open as sent, and log the batch's figures (ids only)."""
    for campaign_id in snapshots:
        campaigns.finish_if_done(session, campaign_id, now=now())
    session.commit()
    log.info(
        "batch done: campaign=%s sent=%d failed=%d excluded=%s retry=%d skipped=%d deferred=%d",
        ",".join(map(str, sorted(snapshots))),
        result.sent,
        result.failed,
        result.excluded,
        result.retry,
        result.skipped,
        len(result.deferred),
    )
