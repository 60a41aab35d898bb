"""The webhook outbox: an event row written in the same transaction as the change.

Ledger events are held by the ledger itself (``prefsvc.consent.ledger``: ``append_many`` in
Python and ``ledger_append`` in PL/pgSQL both run ``LEDGER_HOLD``'s rule), so every consent
change, the one-click unsubscribe's single statement included, holds its webhook event
without another round trip; bounces are ledger events too (``inbound.policy``). Finished
campaigns, which the ledger does not record, hold theirs here. Nothing is held while no
endpoint is enabled: a service without webhooks pays one indexed ``EXISTS`` per change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session

from prefsvc.models import WebhookEndpoint, WebhookOutboxEvent
from prefsvc.webhooks import events

OUTBOX = WebhookOutboxEvent.__table__
# Ledger kinds that say nothing a receiver acts on (the source system imported it; a copy
# was exported): not held.
SILENT_KINDS = ("imported", "exported")
CAMPAIGN_SENT = "campaign_sent"

_ANY_ENABLED = select(exists().where(WebhookEndpoint.enabled.is_(True)))

# ``hold_ledger_events`` in PL/pgSQL, for ``ledger_append`` (v_seq is the event's number).
LEDGER_HOLD = """
    IF p_kind NOT IN ('imported', 'exported')
        AND EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        INSERT INTO webhook_outbox (kind, ledger_seq, contact_id, topic_id, held_at)
        VALUES (p_kind, v_seq, p_contact, p_topic, p_at);
    END IF;"""


def listening(session: Session) -> bool:
    """Return True when some endpoint is enabled, so events are worth holding."""
    return bool(session.execute(_ANY_ENABLED).scalar())


def hold_ledger_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Hold the ledger rows just appended (the dicts ``append_many`` inserts).

    Whether anyone listens is asked first: an import without endpoints built a held row for
    each of its subscriptions only to drop them.
    """
    telling = [row for row in rows if _kind(row) not in SILENT_KINDS]
    if not telling or not listening(session):
        return
    held = [
        {
            "kind": _kind(row),
            "ledger_seq": row["seq"],
            "contact_id": row["contact_id"],
            "topic_id": row["topic_id"],
            "campaign_id": None,
            "address_hash": None,
            "held_at": row["occurred_at"],
        }
        for row in telling
    ]
    session.execute(insert(OUTBOX), held)


def _kind(row: dict[str, Any]) -> str:
    return str(getattr(row["kind"], "value", row["kind"]))


def hold_campaign_sent(session: Session, campaign_id: int, *, now: datetime) -> None:
    """Hold ``campaign.sent`` for a campaign whose last delivery is final."""
    if listening(session):
        session.execute(
            insert(OUTBOX).values(kind=CAMPAIGN_SENT, campaign_id=campaign_id, held_at=now)
        )


def note_erased_address(session: Session, contact_id: int, address_hash: str) -> None:
    """Give the contact's held erasure event the keyed hash of the address it no longer has.

    Both an erasure on request and an anonymisation at the end of retention are announced as
    ``contact.erased``.
    """
    session.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.contact_id == contact_id,
            OUTBOX.c.kind.in_(_ERASED_KINDS),
            OUTBOX.c.address_hash.is_(None),
        )
        .values(address_hash=address_hash)
    )


# The held kinds announced as ``contact.erased`` (an erasure on request, the end of retention).
_ERASED_KINDS = tuple(kind for kind, event in events.BY_KIND.items() if event == events.ERASED)
