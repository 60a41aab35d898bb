"""Heartbeats: worker processes and the scheduler say, in the database, that they are alive.

A worker process beats every ``LEASE_SECONDS / 3`` seconds from a thread of its own, and its
claimed deliveries carry its name (``Delivery.owner``): a claim is a lease that lasts as long
as its owner beats. A worker killed with SIGKILL stops beating, and ``LEASE_SECONDS`` later a
redelivered job, a new batch or the scheduler takes its deliveries over, instead of waiting
for a fixed timeout that a slow but live worker might also reach. The scheduler beats once per
tick: the admin shows when it last ran.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from prefsvc.models import Heartbeat

WORKER = "worker"
SCHEDULER = "scheduler"
SCHEDULER_NAME = "scheduler"


def process_name() -> str:
    """Return a name for this process, unique across machines and restarts (no personal data)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def beat(session: Session, name: str, kind: str, *, now: datetime) -> None:
    """Record that ``name`` is alive at ``now`` (in the caller's transaction).

    One upsert, so threads of one process beating at the same moment do not collide.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(Heartbeat).values(name=name, kind=kind, beat_at=now)
    session.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"beat_at": now}))


def live(*, now: datetime, lease: timedelta) -> Select[tuple[str]]:
    """Select the names of the processes that beat within ``lease`` of ``now``."""
    return select(Heartbeat.name).where(Heartbeat.beat_at >= now - lease)


def last(session: Session, name: str) -> datetime | None:
    """Return when ``name`` last beat, or None if it never did (or said goodbye)."""
    return session.scalar(select(Heartbeat.beat_at).where(Heartbeat.name == name))


def forget(session: Session, name: str) -> None:
    """Remove a process that stops cleanly (its claims were handed back)."""
    session.execute(delete(Heartbeat).where(Heartbeat.name == name))


def prune(session: Session, *, now: datetime, older_than: timedelta) -> int:
    """Delete the rows of workers long dead (killed processes leave theirs behind)."""
    result = session.execute(
        delete(Heartbeat).where(Heartbeat.kind == WORKER, Heartbeat.beat_at < now - older_than)
    )
    return result.rowcount or 0
