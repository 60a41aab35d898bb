"""The consent ledger: append-only, hash-chained events that prove what each person chose.

Every event carries ``seq`` (gapless, in order of appending), ``prev_hash`` and ``hash`` =
SHA-256(prev_hash + canonical JSON of the event). Changing, deleting or reordering a row breaks
the chain at that row, and ``verify`` names it. Appenders lock the one ``ledger_head`` row for
the rest of their transaction, so concurrent writers on PostgreSQL queue up instead of forking
the chain (SQLite serialises writers already).

Events hold no personal data (only ids, kinds, channels and field names), so erasure and
anonymisation never rewrite them and the chain stays verifiable for good.

The database half sits here too: the triggers that make ``consent_events`` append-only, the
head row, and ``ledger_append``, the PL/pgSQL twin of ``append`` that PostgreSQL runs in one
round trip (``append_many`` is the Python rule it mirrors; tests/consent/test_ledger.py proves
both chain the same rows). ``attach_server_ddl`` has ``create_all`` build them (tests);
migrations 0002 and 0005 hold the copies an upgrade runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DDL, JSON, MetaData, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.event import contains, listen
from sqlalchemy.orm import Session

from prefsvc.models import ConsentEvent, EventKind, LedgerHead, UTCDateTime
from prefsvc.webhooks import outbox as webhook_outbox

GENESIS = "0" * 64
HEAD_ID = 1
# Keys that would put a person's data into the ledger; the ledger refuses them.
PERSONAL_KEYS = frozenset(
    {"email", "address", "first_name", "last_name", "name", "organisation", "old", "new"}
)


# Every column of an event, in chain order: what ``verify`` reads and what proofs compare.
EVENT_COLUMNS = (
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


def around_seq(
    event: NewEvent, *, detail: dict[str, Any], occurred_at: datetime
) -> tuple[str, str]:
    """Return the event's canonical JSON before and after its ``seq`` value.

    The chain hashes ``before + str(seq) + after``; PostgreSQL's ``ledger_append`` joins them
    around the number it takes from the head. ``seq`` sorts second to last, after
    ``detail``: the last ``"seq":0`` is always the event's own.
    """
    text = event.payload(seq=0, detail=detail, occurred_at=occurred_at).decode()
    before, _, after = text.rpartition('"seq":0')
    return before + '"seq":', after


def around_contact_and_seq(
    kind: EventKind,
    channel: str,
    topic_id: int | None,
    *,
    detail: dict[str, Any],
    occurred_at: datetime,
) -> tuple[str, str, str]:
    """Return the canonical JSON in three parts: ``head + contact_id + middle`` is ``before``.

    For a statement that finds the contact itself (a one-click unsubscribe reads the link
    and leaves in one round trip). ``contact_id`` sorts second, after ``channel``, whose
    string value cannot hold an unescaped ``"contact_id":``.
    """
    before, after = around_seq(
        NewEvent(0, kind, channel, topic_id), detail=detail, occurred_at=occurred_at
    )
    head, _, middle = before.partition('"contact_id":0')
    return head + '"contact_id":', middle, after


def chain_hash(prev_hash: str, payload: bytes) -> str:
    """Return the hex SHA-256 of the previous hash followed by this event's canonical bytes."""
    return hashlib.sha256(prev_hash.encode("ascii") + payload).hexdigest()


def _check_detail(detail: dict[str, Any]) -> None:
    personal = PERSONAL_KEYS.intersection(detail)
    if personal:
        raise ValueError(f"ledger detail may not hold personal data: {sorted(personal)}")


_HEAD = LedgerHead.__table__
_EVENTS = ConsentEvent.__table__
# Built once: constructing a statement costs more than executing a cached one.
_ADVANCE = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(seq=_HEAD.c.seq + bindparam("count"))
    .returning(_HEAD.c.seq, _HEAD.c.hash)
)
_SET_HASH = update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(hash=bindparam("digest"))
_APPEND_ON_SERVER = select(
    func.ledger_append(
        bindparam("contact_id"),
        bindparam("topic_id"),
        bindparam("kind"),
        bindparam("channel"),
        bindparam("detail", type_=JSON()),
        bindparam("at", type_=UTCDateTime()),
        bindparam("before"),
        bindparam("after"),
    )
)


def _advance_head(session: Session, count: int = 1) -> tuple[int, str]:
    """Lock the head row and move its ``seq`` on by ``count``; return the old (seq, hash).

    One ``UPDATE … RETURNING`` takes the lock and reads the head together, and holds it until
    the caller's transaction ends. Migration 0005 creates the head row; should it be missing,
    it is created here.
    """
    row = session.execute(_ADVANCE, {"count": count}).one_or_none()  # flushes pending first
    if row is None:
        dialect = session.get_bind().dialect.name
        insert_head = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert_head(_HEAD)
            .values(id=HEAD_ID, seq=0, hash=GENESIS)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = session.execute(_ADVANCE, {"count": count}).one()
    return row.seq - count, row.hash


def _set_head_hash(session: Session, digest: str) -> None:
    session.execute(_SET_HASH, {"digest": digest})


@dataclass(frozen=True)
class NewEvent:
    """One event to append: ids, not ORM objects."""

    contact_id: int
    kind: EventKind
    channel: str
    topic_id: int | None = None
    detail: dict[str, Any] | None = None

    def payload(self, *, seq: int, detail: dict[str, Any], occurred_at: datetime) -> bytes:
        """Return the canonical bytes the chain hashes for this event at ``seq``."""
        return canonical(
            seq=seq,
            contact_id=self.contact_id,
            topic_id=self.topic_id,
            kind=self.kind.value,
            channel=self.channel,
            detail=detail,
            occurred_at=occurred_at,
        )

    def checked_detail(self) -> dict[str, Any]:
        """Return a copy of the detail, refusing keys that would put personal data in it."""
        detail = dict(self.detail or {})
        _check_detail(detail)
        return detail


def append(
    session: Session,
    contact_id: int,
    kind: EventKind,
    *,
    channel: str,
    now: datetime,
    topic_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event to the chain inside the caller's transaction.

    Core statements, not ORM objects: the one-click unsubscribe appends at hundreds a second.
    On PostgreSQL one ``ledger_append`` call locks and moves the head; elsewhere it is
    ``append_many`` of one. The head stays locked until the caller commits or rolls back, and
    a rollback (of the transaction or a savepoint) takes the event and the head's move back
    together, so ``seq`` never has gaps. Take a contact's row lock before appending, never
    after (retention does).
    """
    event = NewEvent(contact_id, kind, channel, topic_id, detail)
    if session.get_bind().dialect.name != "postgresql":
        append_many(session, [event], now=now)
        return
    detail = event.checked_detail()
    before, after = around_seq(event, detail=detail, occurred_at=now)
    session.execute(
        _APPEND_ON_SERVER,
        {
            "contact_id": contact_id,
            "topic_id": topic_id,
            "kind": kind.value,
            "channel": channel,
            "detail": detail,
            "at": now,
            "before": before,
            "after": after,
        },
    )


def append_many(session: Session, events: Iterable[NewEvent], *, now: datetime) -> int:
    """Append events in order with one bulk INSERT (imports); return how many.

    The same chain and head lock as ``append``, minus a statement per event: ten thousand
    imported contacts would otherwise spend seconds on the ledger alone.
    """
    checked = [(event, event.checked_detail()) for event in events]
    if not checked:
        return 0
    seq, prev_hash = _advance_head(session, len(checked))
    rows: list[dict[str, Any]] = []
    for event, detail in checked:
        seq += 1
        digest = chain_hash(prev_hash, event.payload(seq=seq, detail=detail, occurred_at=now))
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
    # Core, not the ORM's bulk insert: every row the same columns, one executemany, and no
    # second copy of each row's parameters.
    session.execute(insert(_EVENTS), rows)
    webhook_outbox.hold_ledger_events(session, rows)  # the webhook twin of each event
    _set_head_hash(session, prev_hash)
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
        select(*EVENT_COLUMNS).order_by(ConsentEvent.seq).execution_options(yield_per=batch)
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
    head = session.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == HEAD_ID)).first()
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    if head_seq > checked:
        return VerifyResult(False, checked, checked + 1, "events missing at the end")
    if head_seq < checked:
        return VerifyResult(False, checked, head_seq + 1, "events added past the head")
    if head_hash != previous:
        return VerifyResult(False, checked, checked, "last event does not match the head")
    return VerifyResult(True, checked, head_hash=previous)


# --- the database half: built by ``create_all``; migrations 0002 and 0005 hold the copies ----

# The head row is in place from the start (after migration 0005, and after ``create_all``).
GENESIS_ROW = DDL(f"INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, '{GENESIS}')")
# The database itself refuses to change or delete an event (as migration 0002).
APPEND_ONLY_DDL = {
    "sqlite": (
        "CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
        "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END",
        "CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events "
        "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION consent_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'consent_events is append-only' USING ERRCODE = 'insufficient_privilege'; "
        "END $$",
        "CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events "
        "FOR EACH ROW EXECUTE FUNCTION consent_events_append_only()",
    ),
}
# ``append`` on PostgreSQL, in one statement: the head row is then locked for one round trip,
# not several, however busy the web workers are. Python still builds the event's canonical
# JSON (``around_seq``); SQL only puts in the sequence number and the hashes, exactly as
# ``append_many`` and ``chain_hash`` do. SQLite (one writer, no round trips) takes the Python
# path. Each event also holds its webhook twin (``webhook_outbox.LEDGER_HOLD``), as
# ``append_many`` does. Migration 0011_webhooks holds the copy an upgrade creates.
APPEND_FUNCTION = (
    """CREATE OR REPLACE FUNCTION ledger_append(
    p_contact integer, p_topic integer, p_kind varchar, p_channel varchar, p_detail json,
    p_at timestamp, p_before text, p_after text
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_seq integer;
    v_prev varchar;
    v_hash varchar;
BEGIN
    UPDATE ledger_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash INTO v_seq, v_prev;
    IF NOT FOUND THEN
        INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, repeat('0', 64))
        ON CONFLICT (id) DO NOTHING;
        UPDATE ledger_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash INTO v_seq, v_prev;
    END IF;
    v_hash := encode(
        sha256(convert_to(v_prev || p_before || v_seq::text || p_after, 'UTF8')), 'hex'
    );
    INSERT INTO consent_events
        (seq, contact_id, topic_id, kind, channel, detail, occurred_at, prev_hash, hash)
    VALUES (v_seq, p_contact, p_topic, p_kind, p_channel, p_detail, p_at, v_prev, v_hash);
    UPDATE ledger_head SET hash = v_hash WHERE id = 1;"""
    + webhook_outbox.LEDGER_HOLD
    + """
    RETURN v_seq;
END $$"""
)
_EVENTS_DDL = (
    DDL(APPEND_FUNCTION).execute_if(dialect="postgresql"),
    *(
        DDL(statement).execute_if(dialect=dialect)
        for dialect, statements in APPEND_ONLY_DDL.items()
        for statement in statements
    ),
)


def attach_server_ddl(metadata: MetaData) -> None:
    """Have ``metadata.create_all`` also build the head row, the triggers and ``ledger_append``.

    Each runs right after its table is created, so a ``create_all`` that finds the tables in
    place adds nothing twice; attaching again (an app per test) changes nothing.
    """
    _listen_once(metadata.tables[_HEAD.name], GENESIS_ROW)
    for ddl in _EVENTS_DDL:
        _listen_once(metadata.tables[ConsentEvent.__tablename__], ddl)


def _listen_once(table: Any, ddl: Any) -> None:
    """Run ``ddl`` after ``create_all`` creates ``table``, however often this is called."""
    if not contains(table, "after_create", ddl):
        listen(table, "after_create", ddl)
