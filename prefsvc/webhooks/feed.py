"""The changes feed: consent and contact changes in ledger order, for systems that poll.

The cursor is opaque to clients (``v1.`` + the ledger ``seq``, base64url) and moves past
every event read, returned or not, so a poll never sees an event twice and never misses one:
``seq`` is gapless and given under the ledger head's lock, so events commit in its order.
Items use the webhook event names and payload shape (``events``); exports, which change
nothing, are left out; an import is ``contact.updated``. Bounces (ledger kind ``bounced``) are
``contact.bounced``, complaints (an objection by channel ``complaint``) ``contact.complained``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.errors import InvalidInput
from prefsvc.models import ConsentEvent, Contact, Topic
from prefsvc.webhooks import events

MAX_LIMIT = 1000
_PREFIX = "v1."


def cursor_of(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{seq}".encode()).decode().rstrip("=")


def seq_of(cursor: str | None) -> int:
    """Return the seq a cursor stands for (0 for none), or raise InvalidInput naming ``after``."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        seq = int(text.removeprefix(_PREFIX))
        if not 0 <= seq < 2**31:
            raise ValueError(seq)
        return seq
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("after", "is not a cursor this feed gave") from None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str
    more: bool


def changes(session: Session, *, after: str | None, limit: int = 100) -> Page:
    """Return up to ``limit`` changes after the cursor, and the cursor to ask with next."""
    start = seq_of(after)
    limit = max(1, min(limit, MAX_LIMIT))
    rows = session.execute(
        select(
            ConsentEvent.seq,
            ConsentEvent.kind,
            ConsentEvent.channel,
            ConsentEvent.detail,
            ConsentEvent.occurred_at,
            Contact.public_id,
            Contact.email,
            Topic.slug,
        )
        .join(Contact, Contact.id == ConsentEvent.contact_id)
        .outerjoin(Topic, Topic.id == ConsentEvent.topic_id)
        .where(ConsentEvent.seq > start)
        .order_by(ConsentEvent.seq)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for row in rows:
        kind = row.kind.value
        if kind == "exported":
            continue
        name = (
            events.UPDATED if kind == "imported" else events.event_of(kind, row.channel, row.detail)
        )
        payload = events.contact_payload(
            name,
            occurred_at=row.occurred_at,
            public_id=row.public_id,
            topic_slug=row.slug,
            channel=row.channel,
            ledger_seq=row.seq,
        )
        payload = events.with_address(payload, row.email)
        items.append({"cursor": cursor_of(row.seq), **payload})
    last = rows[-1].seq if rows else start
    return Page(items, cursor_of(last), more)
