"""Deliver batches: claim, re-check, render, sign, send, record; safe with many workers.

A batch is a list of delivery ids. Claiming is one conditional ``UPDATE … WHERE status =
'queued'``: when two workers race for the same rows the database lets only one of them win,
so a delivery is never sent twice in a normal run. Each result is committed as soon as it is
known, so a killed worker re-sends at most what it had in flight.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ARRAY, Integer, any_, bindparam, func, literal, select, text, update
from sqlalchemy.orm import Session

from prefsvc import clock
from prefsvc.campaigns import audience, campaigns
from prefsvc.consent import suppression
from prefsvc.errors import InvalidInput, TemporaryBatchFailure
from prefsvc.extensions import db
from prefsvc.mail import kit, rate_limits
from prefsvc.mail.rendering import (
    CompiledVariant,
    RecipientContext,
    Rendered,
    render,
)
from prefsvc.mail.transport import (
    DeliveryError,
    PermanentFailure,
    TemporaryFailure,
    Transport,
)
from prefsvc.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Delivery,
    DeliveryStatus,
    Language,
    Subscription,
)
from prefsvc.settings import Settings, current_settings

log = logging.getLogger(__name__)

# Results are committed every WRITE_BACK_EVERY messages per thread: a killed worker re-sends at
# most that many per thread (messages handed to SMTP whose result was not yet committed).
# PostgreSQL commits them without waiting for the WAL flush (synchronous_commit=off: a worker
# crash loses nothing, a database server crash at most the last ~200 ms).
WRITE_BACK_EVERY = 10
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


# Failed reason of a delivery whose message could not be rendered for that contact's data.
UNRENDERABLE = "unrenderable"
# A thread sleeps at most this long for a rate-limit slot; a later slot sends the delivery back
# to the queue (re-queued by the actor with that delay) so the thread can serve other domains.
LONGEST_RATE_WAIT = 2.0


def _ids_among(session: Session, ids) -> object:
    """Return ``Delivery.id IN ids``; on PostgreSQL as ``= ANY(array)``: one parameter.

    psycopg re-parses a statement with more than 50 parameters on every call (no cache): with
    ``IN`` of a 100-id batch that was 14 % of a worker's CPU.
    """
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return Delivery.id == any_(literal(ids, ARRAY(Integer)))
    return Delivery.id.in_(ids)


# --- the batch --------------------------------------------------------------------------


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    retry: int = 0
    skipped: int = 0
    deferred: list[int] = field(default_factory=list)  # rate limit: handed back for later
    defer_seconds: float = 0.0


def run_batch(delivery_ids: list[int], *, final_attempt: bool = False) -> BatchResult:
    """Deliver a batch in the current app context (the Dramatiq actor's body)."""
    settings = current_settings()
    return deliver(
        db.session,
        delivery_ids,
        settings=settings,
        now=clock.now,
        transport=kit.transport(settings),
        final_attempt=final_attempt,
    )


def claim(
    session: Session, delivery_ids: list[int], *, now: datetime, stuck_after: timedelta
) -> list[int]:
    """Move queued deliveries to sending; return the ids this caller won.

    A delivery left in ``sending`` for longer than ``stuck_after`` belonged to a worker that
    died mid-batch; the redelivered job may take it over.
    """
    if not delivery_ids:
        return []
    claimable = (Delivery.status == DeliveryStatus.QUEUED) | (
        (Delivery.status == DeliveryStatus.SENDING) & (Delivery.claimed_at < now - stuck_after)
    )
    rows = session.execute(
        update(Delivery)
        .where(_ids_among(session, delivery_ids), claimable)
        .values(status=DeliveryStatus.SENDING, claimed_at=now, attempts=Delivery.attempts + 1)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    won = sorted(r[0] for r in rows)
    session.commit()
    return won


@dataclass(frozen=True)
class _CampaignSnapshot:
    """What a batch needs of its campaign, read once (rows are expired by each commit)."""

    status: CampaignStatus
    topic_id: int
    topic_name: str
    list_id: str
    variants: dict[str, CompiledVariant]
    default: CompiledVariant


def _snapshot(session: Session, campaign_id: int, settings: Settings) -> _CampaignSnapshot:
    campaign = session.get(Campaign, campaign_id)
    topic = campaign.topic
    variants = {v.language.value: kit.compiled(v, topic.name) for v in campaign.variants}
    return _CampaignSnapshot(
        status=campaign.status,
        topic_id=topic.id,
        topic_name=topic.name,
        list_id=kit.list_id(settings, topic),
        variants=variants,
        default=kit.compiled(campaign.variant_for(campaign.default_language), topic.name),
    )


def deliver(
    session: Session,
    delivery_ids: list[int],
    *,
    settings: Settings,
    now,
    transport: Transport,
    final_attempt: bool = False,
    rate_limiter: rate_limits.Limiter | None = None,
    sleep=time.sleep,
) -> BatchResult:
    """Claim, re-check and send a batch; raise TemporaryBatchFailure if some should be retried.

    Deliveries the rate limits do not let go soon are handed back as ``queued`` and listed in
    ``result.deferred``; the caller queues them again after ``result.defer_seconds``.
    """
    rate_limiter = rate_limiter if rate_limiter is not None else kit.limiter(settings)
    result = BatchResult()
    started = now()
    claimed = claim(
        session,
        delivery_ids,
        now=started,
        stuck_after=timedelta(seconds=settings.stuck_after_seconds),
    )
    result.skipped = len(delivery_ids) - len(claimed)
    in_flight_elsewhere = _still_sending(session, set(delivery_ids) - set(claimed))
    if not claimed:
        _retry_if_in_flight(in_flight_elsewhere, settings)
        return result

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
            Subscription.status.label("subscription_status"),
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .outerjoin(
            Subscription,
            (Subscription.contact_id == Contact.id) & (Subscription.topic_id == Campaign.topic_id),
        )
        .where(_ids_among(session, claimed))
        .order_by(Delivery.id)
    ).all()
    snapshots = {c: _snapshot(session, c, settings) for c in {r.campaign_id for r in rows}}
    today = started.astimezone(settings.timezone).date()
    suppressed = suppression.suppressed_among(
        session, settings.suppression_key, [r.email for r in rows if r.email]
    )
    session.commit()  # end the read transaction; nothing below holds locks while sending
    mailer = kit.builder(settings)
    sender = kit.envelope_sender(settings)
    pending: list[dict] = []
    handled: set[int] = set()

    relaxed_commit = session.get_bind().dialect.name == "postgresql"

    def write_back() -> None:
        if pending:
            if relaxed_commit:
                session.execute(text("SET LOCAL synchronous_commit = off"))
            session.execute(RECORD_OUTCOME, pending)
            session.commit()
            pending.clear()

    try:
        for row in rows:
            handled.add(row.delivery_id)
            snap = snapshots[row.campaign_id]
            if snap.status is not CampaignStatus.SENDING:
                pending.append(_release(row.delivery_id, snap.status))
                continue
            reason = audience.reason_for(
                row, row.subscription_status, on=today, years=settings.marketing_window_years
            )
            if reason is None and row.email in suppressed:
                reason = audience.SUPPRESSED
            if reason is not None:
                result.excluded[reason] = result.excluded.get(reason, 0) + 1
                pending.append(_outcome(row.delivery_id, DeliveryStatus.EXCLUDED, reason=reason))
                continue
            slot = rate_limiter.reserve(
                row.email.rpartition("@")[2].lower(), max_wait=LONGEST_RATE_WAIT
            )
            if not slot.granted:
                result.deferred.append(row.delivery_id)
                result.defer_seconds = max(result.defer_seconds, slot.wait)
                pending.append(_outcome(row.delivery_id, DeliveryStatus.QUEUED))
                continue
            if slot.wait > 0:
                sleep(slot.wait)
            unsubscribe_url, preferences_url = kit.links(settings, row.public_id, snap.topic_id)
            try:
                rendered = render(
                    snap.variants.get(row.language.value, snap.default),
                    contact=RecipientContext(
                        email=row.email,
                        first_name=row.first_name,
                        last_name=row.last_name,
                        organisation=row.organisation,
                        language=row.language.value,
                    ),
                    unsubscribe_url=unsubscribe_url,
                    preferences_url=preferences_url,
                )
                _, message = mailer.campaign_message(
                    to=row.email,
                    rendered=rendered,
                    unsubscribe_url=unsubscribe_url,
                    list_id=snap.list_id,
                    now=now(),
                )
            except Exception as exc:  # noqa: BLE001 - a template that breaks on this person's data
                # Nothing was sent: fail this delivery alone, keep the error for the campaign's
                # figures (not the log: a template error may quote the person's data).
                log.warning(
                    "delivery %d cannot be rendered: %s", row.delivery_id, type(exc).__name__
                )
                result.failed += 1
                error = DeliveryError(None, f"{type(exc).__name__}: {exc}")
                pending.append(_failed(row.delivery_id, error, UNRENDERABLE))
                continue
            try:
                transport.send(sender=sender, recipients=[row.email], message=message)
            except PermanentFailure as exc:
                result.failed += 1
                pending.append(_failed(row.delivery_id, exc, "rejected"))
            except TemporaryFailure as exc:
                if final_attempt:
                    result.failed += 1
                    pending.append(_failed(row.delivery_id, exc, "retries_exhausted"))
                else:
                    result.retry += 1
                    pending.append(_outcome(row.delivery_id, DeliveryStatus.QUEUED, error=exc))
            else:
                result.sent += 1
                pending.append(_outcome(row.delivery_id, DeliveryStatus.SENT, sent_at=now()))
            if len(pending) >= WRITE_BACK_EVERY:
                write_back()
        write_back()
    except Exception:
        # Keep what was really sent; hand everything untouched back to the queue.
        session.rollback()
        _salvage(session, pending, [r.delivery_id for r in rows if r.delivery_id not in handled])
        raise
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
    if result.retry:
        raise TemporaryBatchFailure(f"{result.retry} deliveries will be retried")
    _retry_if_in_flight(in_flight_elsewhere, settings)
    return result


def _still_sending(session: Session, ids: set[int]) -> int:
    """Count deliveries of this batch that another (perhaps dead) worker holds in sending."""
    if not ids:
        return 0
    count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(_ids_among(session, ids), Delivery.status == DeliveryStatus.SENDING)
    )
    session.commit()
    return count or 0


def _retry_if_in_flight(count: int, settings: Settings) -> None:
    """A redelivered batch whose rows are still held: look again once a dead holder is stale."""
    if count:
        raise TemporaryBatchFailure(
            f"{count} deliveries are in flight elsewhere",
            retry_after_ms=(settings.stuck_after_seconds + 1) * 1000,
        )


def _salvage(session: Session, pending: list[dict], untouched: list[int]) -> None:
    try:
        if pending:
            session.execute(RECORD_OUTCOME, pending)
        if untouched:
            session.execute(
                update(Delivery)
                .where(_ids_among(session, untouched), Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.QUEUED)
                .execution_options(synchronize_session=False)
            )
        session.commit()
    except Exception:  # noqa: BLE001 - the database itself may be gone; recover_stuck will help
        session.rollback()
        log.warning("could not hand %d deliveries back after a failure", len(untouched))


def _release(delivery_id: int, status: CampaignStatus) -> dict:
    """Hand a claimed delivery back (paused campaign) or close it (cancelled campaign)."""
    if status is CampaignStatus.CANCELLED:
        return _outcome(delivery_id, DeliveryStatus.EXCLUDED, reason="cancelled")
    return _outcome(delivery_id, DeliveryStatus.QUEUED)


def _failed(delivery_id: int, exc: DeliveryError, reason: str) -> dict:
    return _outcome(delivery_id, DeliveryStatus.FAILED, reason=reason, error=exc)


def recover_stuck(session: Session, *, now: datetime, older_than: timedelta) -> list[int]:
    """Put deliveries stuck in ``sending`` (their worker died) back in the queue."""
    rows = session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.SENDING, Delivery.claimed_at < now - older_than)
        .values(status=DeliveryStatus.QUEUED)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(r[0] for r in rows)
    session.commit()
    return ids


def _sample_recipient(
    session: Session, campaign: Campaign, settings: Settings, language: str | None, to: str | None
) -> tuple[CompiledVariant, RecipientContext, str, str]:
    """Pick the variant, person and links of a preview: the contact ``to`` if known, else a sample.

    A sample person's links lead to the "link not valid" page.
    """
    from prefsvc.people import contacts

    contact = contacts.find(session, to) if to else None
    lang = language or (contact.language.value if contact else campaign.default_language.value)
    variant = kit.compiled(campaign.variant_for(Language(lang)), campaign.topic.name)
    if contact is not None and contact.email:
        person = RecipientContext(
            email=contact.email,
            first_name=contact.first_name,
            last_name=contact.last_name,
            organisation=contact.organisation,
            language=lang,
        )
        unsubscribe_url, preferences_url = kit.links(settings, contact.public_id, campaign.topic_id)
        return variant, person, unsubscribe_url, preferences_url
    person = RecipientContext(
        email=to or "test@example.org",
        first_name="Test",
        last_name="Test",
        organisation=None,
        language=lang,
    )
    base = settings.base_url
    return variant, person, f"{base}/u/test-preview", f"{base}/p/test-preview"


def preview(
    session: Session,
    campaign: Campaign,
    *,
    settings: Settings,
    language: str | None = None,
    to: str | None = None,
) -> Rendered:
    """Render the campaign exactly as a recipient gets it (CSS inlined, footer, links).

    Shared by test sends, the API and the admin composer; nothing is sent or recorded.
    """
    from prefsvc.people import contacts

    address = contacts.normalise_email(to) if to else None
    return _render_for(*_sample_recipient(session, campaign, settings, language, address))


def _render_for(
    variant: CompiledVariant, person: RecipientContext, unsubscribe: str, preferences: str
) -> Rendered:
    """Render for one person; a template that breaks on their data is bad input, not a crash."""
    try:
        return render(
            variant, contact=person, unsubscribe_url=unsubscribe, preferences_url=preferences
        )
    except Exception as exc:  # noqa: BLE001 - any error of a template on this person's data
        raise InvalidInput(
            "template", f"cannot be rendered for this person ({type(exc).__name__}: {exc})"
        ) from None


def test_send(
    session: Session,
    campaign: Campaign,
    *,
    to: str,
    language: str | None,
    settings: Settings,
    now: datetime,
    transport: Transport,
) -> str:
    """Send one preview copy to ``to``, subject prefixed ``[TEST]``; nothing is counted."""
    from prefsvc.people import contacts

    address = contacts.normalise_email(to)
    variant, person, unsubscribe_url, preferences_url = _sample_recipient(
        session, campaign, settings, language, address
    )
    rendered = _render_for(variant, person, unsubscribe_url, preferences_url)
    rendered = Rendered(
        subject=f"[TEST] {rendered.subject}", html=rendered.html, text=rendered.text
    )
    message_id, message = kit.builder(settings).campaign_message(
        to=address,
        rendered=rendered,
        unsubscribe_url=unsubscribe_url,
        list_id=kit.list_id(settings, campaign.topic),
        now=now,
    )
    transport.send(sender=kit.envelope_sender(settings), recipients=[address], message=message)
    return message_id
