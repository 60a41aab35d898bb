"""Who holds a delivery: claim queued rows for one worker, hand back those of dead workers.

Claiming is one conditional ``UPDATE … WHERE status = 'queued'``: when two workers race for the
same rows the database lets only one of them win, so a delivery is never sent twice in a normal
run. A row left in ``sending`` past ``STUCK_AFTER_SECONDS`` belonged to a worker that died; the
redelivered job, or the scheduler's ``recover_stuck``, takes it over.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, Integer, any_, func, literal, select, update
from sqlalchemy.orm import Session

from prefsvc.errors import TemporaryBatchFailure
from prefsvc.models import Delivery, DeliveryStatus
from prefsvc.settings import Settings


def ids_among(session: Session, ids: Iterable[int]) -> Any:
    """Return ``Delivery.id IN ids``; on PostgreSQL as ``= ANY(array)``: one parameter.

    psycopg re-parses a statement with more than 50 parameters on every call (no cache): with
    ``IN`` of a 100-id batch that was 14 % of a worker's CPU.
    """
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return Delivery.id == any_(literal(ids, ARRAY(Integer)))
    return Delivery.id.in_(ids)


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
        .where(ids_among(session, delivery_ids), claimable)
        .values(status=DeliveryStatus.SENDING, claimed_at=now, attempts=Delivery.attempts + 1)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    won = sorted(r[0] for r in rows)
    session.commit()
    return won


def still_sending(session: Session, ids: set[int]) -> int:
    """Count deliveries of this batch that another (perhaps dead) worker holds in sending."""
    if not ids:
        return 0
    count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(ids_among(session, ids), Delivery.status == DeliveryStatus.SENDING)
    )
    session.commit()
    return count or 0


def retry_if_in_flight(count: int, settings: Settings) -> None:
    """A redelivered batch whose rows are still held: look again once a dead holder is stale."""
    if count:
        raise TemporaryBatchFailure(
            f"{count} deliveries are in flight elsewhere",
            retry_after_ms=(settings.stuck_after_seconds + 1) * 1000,
        )


def hand_back(session: Session, ids: list[int]) -> None:
    """Put claimed deliveries this worker did not get to back in the queue (not committed)."""
    session.execute(
        update(Delivery)
        .where(ids_among(session, ids), Delivery.status == DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.QUEUED)
        .execution_options(synchronize_session=False)
    )


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
