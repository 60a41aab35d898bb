"""The events a receiver can ask for, which held change each one is, and its payload.

A payload names the contact by its public id; events a receiver must act on (stop mailing,
update its record) also carry the address, added at the moment of sending from the contact's
row, so an address erased meanwhile travels nowhere. ``contact.erased`` never carries one:
only the keyed hash the suppression list keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SUBSCRIBED = "contact.subscribed"
UNSUBSCRIBED = "contact.unsubscribed"
OBJECTED = "contact.objected"
UPDATED = "contact.updated"
ERASED = "contact.erased"
BOUNCED = "contact.bounced"
COMPLAINED = "contact.complained"
CAMPAIGN_SENT = "campaign.sent"
ALL = (SUBSCRIBED, UNSUBSCRIBED, OBJECTED, UPDATED, ERASED, BOUNCED, COMPLAINED, CAMPAIGN_SENT)
# Events whose payload carries the address (while the contact still has one).
WITH_ADDRESS = frozenset({SUBSCRIBED, UNSUBSCRIBED, OBJECTED, UPDATED, BOUNCED, COMPLAINED})

# Held kind (a ledger event kind, or the outbox's own) -> event.
BY_KIND = {
    "subscribed": SUBSCRIBED,
    "resubscribed": SUBSCRIBED,
    "unsubscribed": UNSUBSCRIBED,
    "objection": OBJECTED,
    "preferences": UPDATED,
    "paused": UPDATED,
    "renewed": UPDATED,
    "rectified": UPDATED,
    "erased": ERASED,
    "anonymised": ERASED,
    "bounced": BOUNCED,
    "campaign_sent": CAMPAIGN_SENT,
}
COMPLAINT_CHANNEL = "complaint"


def event_of(kind: str, channel: str | None = None, detail: dict[str, Any] | None = None) -> str:
    """Return the event a held kind is; an objection by spam complaint is a complaint."""
    if kind == "objection" and (
        channel == COMPLAINT_CHANNEL or (detail or {}).get("reason") == "complained"
    ):
        return COMPLAINED
    return BY_KIND[kind]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def contact_payload(
    event: str,
    *,
    occurred_at: datetime,
    public_id: str,
    topic_slug: str | None,
    channel: str | None,
    ledger_seq: int | None,
    address_hash: str | None = None,
) -> dict[str, Any]:
    """Return a contact event's payload, without the address (``with_address`` adds it)."""
    contact: dict[str, Any] = {"public_id": public_id}
    if event == ERASED:
        contact["address_hash"] = address_hash
    data: dict[str, Any] = {"contact": contact, "topic": topic_slug, "channel": channel}
    if ledger_seq is not None:
        data["ledger_seq"] = ledger_seq
    return {"type": event, "timestamp": iso(occurred_at), "data": data}


def campaign_payload(
    *, occurred_at: datetime, campaign_id: int, topic_slug: str | None, sent: int
) -> dict[str, Any]:
    return {
        "type": CAMPAIGN_SENT,
        "timestamp": iso(occurred_at),
        "data": {"campaign": {"id": campaign_id, "topic": topic_slug, "sent": sent}},
    }


def with_address(payload: dict[str, Any], address: str | None) -> dict[str, Any]:
    """Return the payload as sent: the address put in where the event calls for it."""
    if payload["type"] not in WITH_ADDRESS or not address:
        return payload
    data = dict(payload["data"])
    data["contact"] = dict(data["contact"], email=address)
    return dict(payload, data=data)
