"""The job outbox: every background job is written in the transaction of the change that needs it.

A web request, a CLI command or the scheduler never calls the broker while it changes data:
it records the job here and commits the change and the job together. A relay in every worker
process (``broker.OutboxRelay``) hands the held jobs to the broker and deletes them once
queued. A broker outage therefore delays jobs and never loses them, and a change is never
undone because a broker did not answer.

The API, for any actor declared in ``prefsvc.queue.actors``::

    outbox.add(session, "send_notice", [kind, contact_id, params], now=now)  # no commit
    session.commit()
    broker.queue().jobs_held()  # optional: the in-process relay queues them at once

``release`` is the relay's half. A job may be queued twice (a relay that dies between queueing
and its commit), never lost: actors must be idempotent, as ``send_batch`` is (claims) and
notices nearly are (one duplicate mail at most). Arguments are ids and small parameters,
never an address or a token: queued messages end up in broker logs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from prefsvc.models import OutboxJob

OUTBOX = OutboxJob.__table__
RELEASE_BATCH = 200

RUN = 50  # jobs of one actor handed over in one call: the notices of one ``send_notices`` job

QueueJobs = Callable[[str, list[list[Any]]], None]


def add(session: Session, actor: str, args: list[Any], *, now: datetime) -> None:
    """Record a job for ``actor`` in the caller's transaction; it is queued once that commits."""
    session.execute(insert(OUTBOX).values(actor=actor, args=list(args), held_at=now))


def release(
    session: Session,
    queue_jobs: QueueJobs,
    *,
    actors: Collection[str],
    limit: int = RELEASE_BATCH,
) -> int:
    """Queue up to ``limit`` held jobs, oldest first, and commit; return how many.

    ``queue_jobs(actor, [args, ...])`` queues a run of up to ``RUN`` jobs of one actor. Only
    jobs of ``actors`` (those this process declares) are taken: the others wait for a relay
    that knows them. The rows are locked (other relays skip them on PostgreSQL) and deleted
    run by run as the broker takes them; when it fails, the runs already queued are committed
    as gone and the exception goes on: the rest stay held for the next round.
    """
    rows = session.execute(
        select(OUTBOX.c.id, OUTBOX.c.actor, OUTBOX.c.args)
        .where(OUTBOX.c.actor.in_(list(actors)))
        .order_by(OUTBOX.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    queued: list[int] = []
    try:
        start = 0
        while start < len(rows):
            actor = rows[start].actor
            end = start
            while end < len(rows) and end - start < RUN and rows[end].actor == actor:
                end += 1
            queue_jobs(actor, [row.args for row in rows[start:end]])
            queued.extend(row.id for row in rows[start:end])
            start = end
    finally:
        if queued:
            session.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(queued)))
        session.commit()
    return len(queued)


def waiting(
    session: Session, *, now: datetime, older_than: timedelta
) -> tuple[int, datetime | None]:
    """Return how many jobs have waited longer than ``older_than`` for a broker, and the oldest
    one's time: work that no relay could queue (the broker, or every worker, is down)."""
    count, oldest = session.execute(
        select(func.count(), func.min(OUTBOX.c.held_at)).where(OUTBOX.c.held_at < now - older_than)
    ).one()
    return count or 0, oldest


def held(session: Session, actor: str, *, limit: int | None = None) -> list[list[Any]]:
    """Return the arguments of the jobs of ``actor`` still held, oldest first."""
    query = select(OUTBOX.c.args).where(OUTBOX.c.actor == actor).order_by(OUTBOX.c.id)
    return [row.args for row in session.execute(query.limit(limit))]
