"""The consent ledger: append-only, hash-chained events that prove what each person chose.

Every event carries ``seq`` (gapless, in order of appending), ``prev_hash`` and ``hash`` =
SHA-256(prev_hash + canonical JSON of the event). Changing, deleting or reordering a row breaks
the chain at that row, and ``verify`` names it. Appenders lock the one ``ledger_head`` row for
the rest of their transaction, so concurrent writers on PostgreSQL queue up instead of forking
the chain (SQLite serialises writers already).

Events hold no personal data (only ids, kinds, channels and field names), so erasure and
anonymisation never rewrite them and the chain stays verifiable for good.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, scoped_session

from prefsvc.models import ConsentEvent, Contact, EventKind, LedgerHead, Topic

GENESIS = "0" * 64
HEAD_ID = 1
# Keys that would put a person's data into the ledger; the ledger refuses them.
PERSONAL_KEYS = frozenset(
    {"email", "address", "first_name", "last_name", "name", "organisation", "old", "new"}
)
_SESSION_KEY = "prefsvc.ledger.head"


def canonical(
    *,
    seq: int,
    contact_id: int,
    topic_id: int | None,
    kind: str,
    channel: str,
    detail: dict[str, Any],
    occurred_at: datetime,
) -> bytes:
    """Return the bytes an event's hash covers: sorted, compact JSON, UTC to the microsecond."""
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    document = {
        "seq": seq,
        "contact_id": contact_id,
        "topic_id": topic_id,
        "kind": str(kind),
        "channel": channel,
        "detail": detail,
        "occurred_at": occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, payload: bytes) -> str:
    """Return the hex SHA-256 of the previous hash followed by this event's canonical bytes."""
    return hashlib.sha256(prev_hash.encode("ascii") + payload).hexdigest()


def _check_detail(detail: dict[str, Any]) -> None:
    personal = PERSONAL_KEYS.intersection(detail)
    if personal:
        raise ValueError(f"ledger detail may not hold personal data: {sorted(personal)}")


def _locked_head(session: Session) -> LedgerHead:
    """Return the head row, locked until this transaction ends (created on first use)."""
    if isinstance(session, scoped_session):
        session = session()
    transaction = session.get_transaction()
    cached = session.info.get(_SESSION_KEY)
    if cached is not None and cached[0] is transaction and cached[1] in session:
        # Expired by a rolled-back savepoint: read it again (it may even be gone).
        if not inspect(cached[1]).expired_attributes:
            return cached[1]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(LedgerHead)
        .values(id=HEAD_ID, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    head = session.scalars(
        select(LedgerHead)
        .where(LedgerHead.id == HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    session.info[_SESSION_KEY] = (session.get_transaction(), head)
    return head


def append(
    session: Session,
    contact: Contact,
    kind: EventKind,
    *,
    channel: str,
    now: datetime,
    topic: Topic | None = None,
    detail: dict[str, Any] | None = None,
) -> ConsentEvent:
    """Append one event to the chain inside the caller's transaction; return it.

    The head stays locked until the caller commits or rolls back: a rollback takes the
    event and the head's move back together, so ``seq`` never has gaps.
    """
    detail = dict(detail or {})
    _check_detail(detail)
    head = _locked_head(session)  # flushes a pending contact too, so contact.id is known
    if contact.id is None:
        session.flush()
    seq = head.seq + 1
    payload = canonical(
        seq=seq,
        contact_id=contact.id,
        topic_id=topic.id if topic is not None else None,
        kind=kind.value,
        channel=channel,
        detail=detail,
        occurred_at=now,
    )
    digest = chain_hash(head.hash, payload)
    event = ConsentEvent(
        seq=seq,
        contact_id=contact.id,
        topic_id=topic.id if topic is not None else None,
        kind=kind,
        channel=channel,
        detail=detail,
        occurred_at=now,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(event)
    head.seq = seq
    head.hash = digest
    return event


@dataclass(frozen=True)
class NewEvent:
    """One event for ``append_many``: ids instead of objects, so no ORM object per event."""

    contact_id: int
    kind: EventKind
    channel: str
    topic_id: int | None = None
    detail: dict[str, Any] | None = None


def append_many(session: Session, events: Iterable[NewEvent], *, now: datetime) -> int:
    """Append events in order with one bulk INSERT (imports); return how many.

    The same chain and head lock as ``append``, minus an ORM object and a RETURNING per
    event: ten thousand imported contacts would otherwise spend seconds on the ledger alone.
    """
    head = _locked_head(session)
    seq, prev_hash = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for event in events:
        detail = dict(event.detail or {})
        _check_detail(detail)
        seq += 1
        digest = chain_hash(
            prev_hash,
            canonical(
                seq=seq,
                contact_id=event.contact_id,
                topic_id=event.topic_id,
                kind=event.kind.value,
                channel=event.channel,
                detail=detail,
                occurred_at=now,
            ),
        )
        rows.append(
            {
                "seq": seq,
                "contact_id": event.contact_id,
                "topic_id": event.topic_id,
                "kind": event.kind,
                "channel": event.channel,
                "detail": detail,
                "occurred_at": now,
                "prev_hash": prev_hash,
                "hash": digest,
            }
        )
        prev_hash = digest
    if rows:
        # render_nulls: every row the same columns, so one executemany, not runs of rows
        session.execute(insert(ConsentEvent).execution_options(render_nulls=True), rows)
        head.seq, head.hash = seq, prev_hash
    return len(rows)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of walking the chain: where it first breaks, if anywhere."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head_hash: str | None = None


def verify(session: Session, *, batch: int = 1000) -> VerifyResult:
    """Walk the whole chain in order and report the first event that does not fit.

    Detects a changed event (its hash no longer matches), a deleted one (a gap in ``seq``,
    or the head pointing past the last event) and reordered ones (hash or link mismatch).
    """
    rows = session.execute(
        select(
            ConsentEvent.seq,
            ConsentEvent.contact_id,
            ConsentEvent.topic_id,
            ConsentEvent.kind,
            ConsentEvent.channel,
            ConsentEvent.detail,
            ConsentEvent.occurred_at,
            ConsentEvent.prev_hash,
            ConsentEvent.hash,
        )
        .order_by(ConsentEvent.seq)
        .execution_options(yield_per=batch)
    )
    expected_seq = 1
    previous = GENESIS
    checked = 0
    for row in rows:
        problem = None
        if row.seq != expected_seq:
            problem = "missing event" if row.seq > expected_seq else "duplicate sequence number"
        elif row.prev_hash != previous:
            problem = "does not link to the event before it"
        else:
            payload = canonical(
                seq=row.seq,
                contact_id=row.contact_id,
                topic_id=row.topic_id,
                kind=row.kind.value,
                channel=row.channel,
                detail=row.detail,
                occurred_at=row.occurred_at,
            )
            if chain_hash(row.prev_hash, payload) != row.hash:
                problem = "content does not match its hash"
        if problem is not None:
            rows.close()
            return VerifyResult(False, checked, expected_seq, problem)
        previous = row.hash
        expected_seq += 1
        checked += 1
    head = session.get(LedgerHead, HEAD_ID)
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    if head_seq > checked:
        return VerifyResult(False, checked, checked + 1, "events missing at the end")
    if head_seq < checked:
        return VerifyResult(False, checked, head_seq + 1, "events added past the head")
    if head_hash != previous:
        return VerifyResult(False, checked, checked, "last event does not match the head")
    return VerifyResult(True, checked, head_hash=previous)
