"""Erasure: personal data removed, the address suppressed for good, a tombstone kept.

The privacy statement promises erasure unless the law requires keeping data: a legal hold,
set by the source system, keeps the identifying fields the law needs, until a date or until
lifted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from prefsvc.consent import changes as consent
from prefsvc.consent import suppression, window
from prefsvc.errors import InvalidInput
from prefsvc.models import (
    Contact,
    ContactStatus,
    Delivery,
    EventKind,
    InboundMessage,
    RightsRequest,
    SuppressionReason,
)
from prefsvc.settings import Settings
from prefsvc.webhooks import outbox as webhook_outbox

# Everything on a contact that says who the person is or what they are to us.
PERSONAL_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "organisation",
    "role",
    "basis",
    "basis_date",
    "paused_until",
    "bounce_diagnostic",  # a mail server's words, which often quote the address
)
# What a legal hold keeps: enough to identify the person in the records the law requires.
HELD_FIELDS = ("first_name", "last_name", "organisation")


@dataclass(frozen=True)
class ErasureResult:
    """What erasure left behind: the fields a legal hold keeps, and why (empty: nothing)."""

    public_id: str
    kept: list[str] = field(default_factory=list)
    reason: str | None = None
    until: date | None = None


MAX_HOLD_REASON = 500


def set_legal_hold(
    session: Session,
    contact: Contact,
    *,
    reason: str | None,
    until: date | None,
    now: datetime,
    channel: str = "source-system",
) -> bool:
    """Record (or, with ``reason`` None, lift) the source system's legal hold on a contact.

    A hold makes erasure keep the identifying fields the law requires (``HELD_FIELDS``) until
    ``until`` (None: until lifted). The ledger records that the hold changed, never the
    reason's text, so the change is provable and shows in the person's access export.
    Return False when nothing changed.
    """
    if contact.status in (ContactStatus.ERASED, ContactStatus.ANONYMISED):
        raise InvalidInput("contact", "has been erased; there is nothing left to hold")
    text = (reason or "").strip() or None
    if text is None and until is not None:
        raise InvalidInput("reason", "is required with an end date")
    if text is not None:
        if len(text) > MAX_HOLD_REASON:
            raise InvalidInput("reason", f"is longer than {MAX_HOLD_REASON} characters")
        if any(c in text for c in "\r\n\0"):
            raise InvalidInput("reason", "may not contain line breaks")
    if until is not None and until < now.date():
        raise InvalidInput("until", "is in the past")
    if (contact.legal_hold_reason, contact.legal_hold_until) == (text, until):
        return False
    contact.legal_hold_reason = text
    contact.legal_hold_until = until
    consent.record(
        session,
        contact,
        EventKind.RECTIFIED,
        channel=channel,
        now=now,
        detail={
            "fields": ["legal_hold_reason", "legal_hold_until"],
            "legal_hold": "set" if text else "lifted",
            "until": until.isoformat() if until else None,
        },
    )
    return True


def hold_active(contact: Contact, today: date) -> bool:
    """Tell whether a legal hold still requires keeping some of this contact's data."""
    if not contact.legal_hold_reason:
        return False
    return contact.legal_hold_until is None or contact.legal_hold_until >= today


def remove_personal_data(session: Session, contact: Contact, *, keep: Iterable[str] = ()) -> None:
    """Clear personal fields and marketing data; events and delivery counts stay as they are.

    Subscriptions go; deliveries keep their status but lose the SMTP reply (it may quote the
    address); returned mail about the person is deleted; request notes are cleared.
    """
    keep = set(keep)
    for name in PERSONAL_FIELDS:
        if name not in keep:
            setattr(contact, name, None)
    contact.subscriptions.clear()
    session.execute(
        update(Delivery)
        .where(Delivery.contact_id == contact.id, Delivery.smtp_text.is_not(None))
        .values(smtp_text=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(InboundMessage).where(InboundMessage.contact_id == contact.id))
    session.execute(
        update(RightsRequest)
        .where(RightsRequest.contact_id == contact.id, RightsRequest.note.is_not(None))
        .values(note=None)
        .execution_options(synchronize_session=False)
    )


def erase(
    session: Session,
    contact: Contact,
    *,
    settings: Settings,
    now: datetime,
    reason: str = "request",
) -> ErasureResult:
    """Erase the person: personal data removed, address suppressed for good, tombstone kept.

    Under an active legal hold marketing data is still erased, but the fields the law needs
    are kept and the result says which and why. Erasing twice changes nothing more.
    """
    today = window.local_today(now, settings.timezone)
    held = hold_active(contact, today)
    keep = [name for name in HELD_FIELDS if held and getattr(contact, name) is not None]
    if contact.status is ContactStatus.ERASED:
        return ErasureResult(contact.public_id, keep, *_hold(contact, held))
    address_hash = None
    if contact.email:
        suppression.add(session, settings.suppression_key, contact.email, SuppressionReason.ERASURE)
        address_hash = suppression.address_hash(settings.suppression_key, contact.email)
    remove_personal_data(session, contact, keep=keep)
    contact.status = ContactStatus.ERASED
    consent.record(
        session, contact, EventKind.ERASED, channel=reason, now=now, detail={"kept": keep}
    )
    if address_hash is not None:  # the only trace of the address a webhook receiver gets
        webhook_outbox.note_erased_address(session, contact.id, address_hash)
    return ErasureResult(contact.public_id, keep, *_hold(contact, held))


def _hold(contact: Contact, held: bool) -> tuple[str | None, date | None]:
    return (contact.legal_hold_reason, contact.legal_hold_until) if held else (None, None)
