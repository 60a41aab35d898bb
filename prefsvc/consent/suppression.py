"""The do-not-mail list that outlives erasure: keyed hashes, never readable addresses.

An address is stored as HMAC-SHA256(suppression key, normalised address), so the list can
answer "is this address suppressed?" without being a list of addresses itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from sqlalchemy import ARRAY, String, any_, bindparam, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from prefsvc.addresses import normalise_email
from prefsvc.models import Suppression, SuppressionReason, utcnow


def address_hash(key: str, email: str) -> str:
    """Return the hex HMAC of the normalised address."""
    normalised = normalise_email(email)
    return hmac.new(key.encode(), normalised.encode(), hashlib.sha256).hexdigest()


def add(session: Session, key: str, email: str, reason: SuppressionReason) -> Suppression:
    """Put the address on the list (idempotent: the first reason is kept)."""
    digest = address_hash(key, email)
    existing = session.scalar(select(Suppression).where(Suppression.address_hash == digest))
    if existing is not None:
        return existing
    entry = Suppression(address_hash=digest, reason=reason, created_at=utcnow())
    session.add(entry)
    session.flush()
    return entry


def put(session: Session, key: str, email: str, reason: SuppressionReason) -> None:
    """``add`` in one statement on the session's connection, nothing loaded (the first reason
    is kept): for intake, which takes complaints by the hundred a second.
    """
    session.connection().execute(
        _PUT[session.get_bind().dialect.name],
        {"digest": address_hash(key, email), "reason": reason, "now": utcnow()},
    )


def _put_statement(insert):
    table = Suppression.__table__
    return (
        insert(table)
        .values(
            address_hash=bindparam("digest"),
            reason=bindparam("reason", type_=table.c.reason.type),
            created_at=bindparam("now", type_=table.c.created_at.type),
        )
        .on_conflict_do_nothing(index_elements=["address_hash"])
    )


_PUT = {"sqlite": _put_statement(sqlite.insert), "postgresql": _put_statement(postgresql.insert)}


def is_suppressed(session: Session, key: str, email: str) -> bool:
    digest = address_hash(key, email)
    return (
        session.scalar(select(Suppression.id).where(Suppression.address_hash == digest)) is not None
    )


def suppressed_among(session: Session, key: str, emails: Iterable[str]) -> set[str]:
    """Return which of these (already normalised) addresses are suppressed, in one query."""
    by_hash = {hmac.new(key.encode(), e.encode(), hashlib.sha256).hexdigest(): e for e in emails}
    if not by_hash:
        return set()
    hashes = list(by_hash)
    if session.get_bind().dialect.name == "postgresql":  # one array parameter: psycopg caches it
        among = Suppression.address_hash == any_(literal(hashes, ARRAY(String)))
    else:
        among = Suppression.address_hash.in_(hashes)
    found = session.scalars(select(Suppression.address_hash).where(among))
    return {by_hash[h] for h in found}


def counts_by_reason(session: Session) -> dict[str, int]:
    """Return how many hashes the list holds per reason (the list itself is unreadable)."""
    rows = session.execute(
        select(Suppression.reason, func.count()).group_by(Suppression.reason)
    ).all()
    return {reason.value: n for reason, n in sorted(rows, key=lambda r: r[0].value)}
