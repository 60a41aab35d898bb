"""Who holds a delivery: claim queued rows for one worker, hand back those of dead workers.

Claiming is one conditional ``UPDATE … WHERE status = 'queued'``: when two workers race for the
same rows the database lets only one of them win, so a delivery is never sent twice in a normal
run. A claim is a lease: the row carries its worker process's name (``owner``) and stays its
own while that process beats (``prefsvc.queue.heartbeats``). Once the owner's last beat is older
than ``LEASE_SECONDS`` (it was killed), a redelivered or new batch job, or the scheduler's
``recover_stuck``, takes the row over; a row without owner (claimed outside a worker) counts
from its ``claimed_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, Integer, any_, func, literal, select, update
from sqlalchemy.orm import Session

from prefsvc.errors import TemporaryBatchFailure
from prefsvc.models import Delivery, DeliveryStatus
from prefsvc.queue import heartbeats
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


def _abandoned(now: datetime, lease: timedelta) -> Any:
    """Rows in ``sending`` whose holder stopped beating more than ``lease`` ago."""
    alive = heartbeats.live(now=now, lease=lease)
    return (Delivery.status == DeliveryStatus.SENDING) & (
        (Delivery.owner.is_(None) & (Delivery.claimed_at < now - lease))
        | (Delivery.owner.is_not(None) & Delivery.owner.not_in(alive))
    )


def claim(
    session: Session,
    delivery_ids: list[int],
    *,
    now: datetime,
    lease: timedelta,
    owner: str | None = None,
) -> list[int]:
    """Move queued deliveries to sending for ``owner``; return the ids this caller won.

    Rows a dead worker held (see ``_abandoned``) are taken over too. The owner's heartbeat is
    renewed in the same transaction, so a claim is never made under a lease already lapsed.
    """
    if not delivery_ids:
        return []
    if owner is not None:
        heartbeats.beat(session, owner, heartbeats.WORKER, now=now)
    claimable = (Delivery.status == DeliveryStatus.QUEUED) | _abandoned(now, lease)
    rows = session.execute(
        update(Delivery)
        .where(ids_among(session, delivery_ids), claimable)
        .values(
            status=DeliveryStatus.SENDING,
            claimed_at=now,
            owner=owner,
            attempts=Delivery.attempts + 1,
        )
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
    """A redelivered batch whose rows are still held: look again once a dead holder's lease
    has lapsed (a live holder finishes them, and the retry then finds nothing to do)."""
    if count:
        raise TemporaryBatchFailure(
            f"{count} deliveries are in flight elsewhere",
            retry_after_ms=(settings.lease_seconds + 1) * 1000,
        )


def hand_back(session: Session, ids: list[int]) -> None:
    """Put claimed deliveries this worker did not get to back in the queue (not committed)."""
    session.execute(
        update(Delivery)
        .where(ids_among(session, ids), Delivery.status == DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.QUEUED, owner=None)
        .execution_options(synchronize_session=False)
    )


def recover_stuck(session: Session, *, now: datetime, lease: timedelta) -> list[int]:
    """Put deliveries whose worker died (lease lapsed) back in the queue; return their ids.

    Not committed: the caller writes their new batch jobs in the same transaction.
    """
    rows = session.execute(
        update(Delivery)
        .where(_abandoned(now, lease))
        .values(status=DeliveryStatus.QUEUED, owner=None)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(r[0] for r in rows)
