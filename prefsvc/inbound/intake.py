"""Take one returned message in: classify it, keep it, act on it once.

The LMTP server, ``prefsvc inbound process`` (a pipe transport or by hand) and any later
intake all call ``receive``. The raw message is kept in ``inbound_messages`` for the team
(deleted after ``INBOUND_KEEP_DAYS`` by the retention job, never logged); its digest makes the
same report, handed over twice or by two ways, count once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prefsvc.inbound import policy, reports, verp
from prefsvc.inbound.classify import Report, classify
from prefsvc.inbound.codes import Kind
from prefsvc.inbound.verp import Token
from prefsvc.models import InboundMessage

_TABLE = InboundMessage.__table__
# Whether a report was kept before: read with what it is about (``policy.look_up``).
_KEEP = insert(_TABLE).returning(_TABLE.c.id)
_KEEP_SORTED = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
_SEEN = select(_TABLE.c.id).where(_TABLE.c.digest == bindparam("digest")).scalar_subquery()
# Fields an MTA puts on top when it hands a message over: they differ between LMTP, a pipe
# and IMAP, so the digest leaves them out.
_TRACE = frozenset(
    {b"return-path", b"delivered-to", b"x-original-to", b"received", b"envelope-to"}
    | {b"x-envelope-to", b"x-delivered-to"}
)
# Where ``process`` finds the envelope recipient when it is not given (Postfix pipe with the
# D flag adds Delivered-To).
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")


@dataclass(frozen=True)
class Intake:
    """What receiving needs of the settings: token keys, our Message-ID domain, the rules."""

    secret_keys: tuple[str, ...]
    message_id_domain: str | None
    rules: policy.Rules

    @classmethod
    def from_settings(cls, settings, message_id_domain: str | None = None) -> Intake:
        return cls(
            secret_keys=tuple(settings.secret_keys),
            message_id_domain=message_id_domain,
            rules=policy.Rules.from_settings(settings),
        )


@dataclass(frozen=True)
class Received:
    """What became of one message: its kind, the outcome, and whether it was seen before."""

    kind: str
    outcome: str
    duplicate: bool = False
    message_id: int | None = None


def receive(
    session: Session,
    raw: bytes,
    *,
    recipient: str | None,
    now: datetime,
    today: date,
    intake: Intake,
) -> Received:
    """Classify, keep and act on one message for one envelope recipient; the caller commits.

    It runs in a transaction of its own: when a concurrent intake kept the same report first,
    the session is rolled back.

    ``recipient`` is the envelope recipient (LMTP's RCPT TO); ``None`` looks for it in the
    delivery headers. A duplicate (same digest) changes nothing and is not kept again.
    """
    return take(session, read(raw, recipient, intake), now=now, today=today, rules=intake.rules)


def take(session: Session, read: Read, *, now: datetime, today: date, rules) -> Received:
    """Keep and act on one message already read (``read``): ``receive`` after the CPU work."""
    received, row = _act(session, read, now=now, today=today, rules=rules)
    if row is None:
        return received
    try:
        row_id = session.connection().execute(_KEEP, row).scalar_one()
    except IntegrityError:
        # The same report, kept by a concurrent intake a moment ago: undo what this one did.
        session.rollback()
        return Received(received.kind, "duplicate", True, None)
    return Received(received.kind, received.outcome, False, row_id)


def take_all(
    session: Session, reads: Sequence[Read], *, now: datetime, today: date, rules
) -> list[Received]:
    """Keep and act on several messages already read, in the caller's one transaction.

    A report kept by a concurrent intake raises ``IntegrityError`` here; one handed over twice
    within ``reads`` is a duplicate the second time, as in two transactions.

    All are looked up in one statement, the deliveries' feedback is kept in one more
    (``policy.note_deliveries``), the reports that may append to the ledger are acted on
    last (the ledger head stays locked from the first append to the commit, and other
    intakes wait for it), and the kept messages go in one ``INSERT``. Outcomes come back in
    the order of ``reads``.
    """
    found = policy.look_up_all(
        session, [read.report.token for read in reads], [read.key for read in reads]
    )
    order = sorted(range(len(reads)), key=lambda n: reads[n].report.kind in _MAY_APPEND)
    acted: dict[str, int] = {}  # digest -> the message of this group acted on
    for n in order:
        if found[n][0] is None:  # not kept before
            acted.setdefault(reads[n].key, n)
    noted = [
        (found[n][1].delivery_id, reads[n].report.kind)
        for n in acted.values()
        if _acts(reads[n].report, found[n][1]) and policy.notes(reads[n].report.kind, found[n][1])
    ]
    policy.note_deliveries(session, noted)  # before the ledger head is locked
    received: list[Received] = [None] * len(reads)  # type: ignore[list-item]
    rows: list[dict] = []
    kept: list[int] = []  # the index in ``reads`` of each row
    first_of: dict[str, int] = {}  # digest -> the message of this group kept with it
    for n in order:
        if reads[n].key in first_of:
            continue  # the same report twice in one group: kept once, counted once
        received[n], row = _act(
            session, reads[n], now=now, today=today, rules=rules, found=found[n], noted=True
        )
        if row is not None:
            first_of[reads[n].key] = n
            rows.append(row)
            kept.append(n)
    if rows:
        ids = session.connection().execute(_KEEP_SORTED, rows).scalars().all()
        for n, row_id in zip(kept, ids, strict=True):
            received[n] = replace(received[n], message_id=row_id)
    for n, one in enumerate(reads):
        first = first_of.get(one.key)
        if first is not None and first != n:
            kept_id = received[first].message_id
            received[n] = Received(one.report.kind.value, "duplicate", True, kept_id)
    return received


# Kinds whose rules may append to the ledger (and so lock its head until the commit).
_MAY_APPEND = frozenset({Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE, Kind.COMPLAINT, Kind.UNSUBSCRIBE})


class Read(NamedTuple):
    """A message classified and named, not yet kept: ``read``'s answer, ``take``'s question."""

    report: Report
    key: str  # the digest
    raw: bytes


def read(raw: bytes, recipient: str | None, intake: Intake) -> Read:
    """Classify a message and name it (its digest): CPU work only, before any transaction.

    The LMTP server does it as each message arrives, while the group before commits.
    """
    codec = verp.codec(intake.secret_keys)
    envelope = codec.parse(recipient) if recipient else _recipient_in_headers(raw, codec)
    report = classify(
        raw, envelope=envelope, codec=codec, message_id_domain=intake.message_id_domain
    )
    return Read(report, digest(raw, envelope), raw)


def _act(
    session, read: Read, *, now, today, rules, found=None, noted: bool = False
) -> tuple[Received, dict | None]:
    """Look the report up (unless ``found`` already says what ``policy.look_up`` would) and
    act on it; return what became of it and the row to keep.

    No row when the report was kept before (a duplicate). ``noted``: its delivery's feedback
    was kept with the group's (``policy.note_deliveries``).
    """
    report, key, raw = read
    if found is None:
        found = policy.look_up(session, report.token, _SEEN, {"digest": key})
    seen, target = found
    if seen is not None:
        return Received(report.kind.value, "duplicate", True, seen), None
    outcome = _outcome(session, report, target, now=now, today=today, rules=rules, noted=noted)
    row = {
        "received_at": now,
        "digest": key,
        "kind": report.kind.value,
        "status": (report.status or "")[:16] or None,
        "delivery_id": target.delivery_id if target else None,
        "contact_id": target.contact_id if target else None,
        "outcome": outcome,
        "raw": raw[: reports.MAX_BYTES],
    }
    return Received(report.kind.value, outcome, False, None), row


def _outcome(session, report, target, *, now, today, rules, noted: bool = False) -> str:
    if not report.acted_on:
        return "ignored"
    if target is None:
        return "unidentified"  # our Message-ID alone, or a delivery deleted since
    if not _acts(report, target):
        return "ignored"  # only a mail to the unsubscribe+ address itself unsubscribes
    return policy.act(
        session,
        report.kind,
        target,
        status=report.status,
        diagnostic=report.diagnostic,
        now=now,
        today=today,
        rules=rules,
        noted=noted,
    )


def _acts(report: Report, target: policy.Target | None) -> bool:
    """Whether the policy acts on a report (not seen before) about ``target``."""
    if not report.acted_on or target is None:
        return False
    return report.kind is not Kind.UNSUBSCRIBE or report.found_in == "envelope"


def digest(raw: bytes, envelope: Token | None) -> str:
    """Return the hex SHA-256 naming one report for one envelope recipient.

    Line endings and the trace fields on top (added by whichever MTA handed it over) are
    left out, so the same report through LMTP, a pipe or IMAP has one digest.
    """
    data = raw.replace(b"\r\n", b"\n")
    position = 0
    if data.startswith(b"From "):  # an mbox separator line (pipe transports may add one)
        position = data.find(b"\n") + 1 or len(data)
    while True:
        end = data.find(b"\n", position)
        if end < 0:
            break
        name, colon, _ = data[position:end].partition(b":")
        if not colon or name.strip().lower() not in _TRACE:
            break
        position = end + 1
        while data[position : position + 1] in (b" ", b"\t"):  # continuation lines
            end = data.find(b"\n", position)
            position = len(data) if end < 0 else end + 1
    named = "" if envelope is None else f"{envelope.purpose}:{envelope.kind}:{envelope.ident}"
    hashed = hashlib.sha256(named.encode("ascii") + b"\0")
    hashed.update(data[position:])
    return hashed.hexdigest()


def _recipient_in_headers(raw: bytes, codec: verp.VerpCodec) -> Token | None:
    """Return the token of the first delivery header naming one of our VERP addresses."""
    headers = reports.parse(raw.partition(b"\n\n")[0].partition(b"\r\n\r\n")[0] + b"\n\n")
    for name in _RECIPIENT_HEADERS:
        for value in headers.get_all(name) or ():
            token = reports.token_in(reports.text(value), codec)
            if token is not None:
                return token
    return None


def purge(session: Session, *, now: datetime, keep_days: int) -> int:
    """Delete kept messages received more than ``keep_days`` ago; return how many."""
    cut = now - timedelta(days=keep_days)
    return session.execute(delete(_TABLE).where(_TABLE.c.received_at < cut)).rowcount or 0


def kept_for_contact(session: Session, contact_id: int, *, limit: int = 20) -> list[dict]:
    """Return the latest kept reports about a contact (no raw bytes): for ``contacts show``."""
    rows = session.execute(
        select(_TABLE.c.id, _TABLE.c.received_at, _TABLE.c.kind, _TABLE.c.status, _TABLE.c.outcome)
        .where(_TABLE.c.contact_id == contact_id)
        .order_by(_TABLE.c.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": row.id,
            "received_at": row.received_at.isoformat(),
            "kind": row.kind,
            "status": row.status,
            "outcome": row.outcome,
        }
        for row in rows
    ]


def for_access_export(session: Session, contact) -> dict:
    """Return the contact's bounce state and every report kept about them, raw text included.

    The raw reports are personal data (they quote the person's address and our mail to them),
    so the data-subject access export carries them whole while they are kept.
    """
    rows = session.execute(
        select(_TABLE.c.received_at, _TABLE.c.kind, _TABLE.c.status, _TABLE.c.outcome, _TABLE.c.raw)
        .where(_TABLE.c.contact_id == contact.id)
        .order_by(_TABLE.c.id)
    ).all()
    return {
        "bounced_at": contact.bounced_at.isoformat() if contact.bounced_at else None,
        "bounce_code": contact.bounce_code,
        "bounce_diagnostic": contact.bounce_diagnostic,
        "bounce_score": contact.bounce_score,
        "complained_at": contact.complained_at.isoformat() if contact.complained_at else None,
        "reports": [
            {
                "received_at": row.received_at.isoformat(),
                "kind": row.kind,
                "status": row.status,
                "outcome": row.outcome,
                "raw": bytes(row.raw).decode("utf-8", errors="replace"),
            }
            for row in rows
        ],
    }
