"""Data-subject rights: the request register, access export, rectification and erasure.

The privacy statement promises an overview within 30 days after identity is checked, a
correction with an overview of the change, and erasure unless the law requires keeping data.
The register records when each request came in, how and when identity was verified, when it
is due and who closed it; the ledger records what was done, without personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from prefsvc import consent, contacts, suppression, window
from prefsvc.errors import InvalidInput, NotFound, RequestStateError
from prefsvc.models import (
    Campaign,
    ConsentEvent,
    Contact,
    ContactStatus,
    Delivery,
    EventKind,
    Language,
    RightsKind,
    RightsRequest,
    RightsStatus,
    SuppressionReason,
    Topic,
)
from prefsvc.settings import Settings

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
)
# What a legal hold keeps: enough to identify the person in the records the law requires.
HELD_FIELDS = ("first_name", "last_name", "organisation")
RECTIFIABLE = ("first_name", "last_name", "organisation", "language")
MAX_NAME_LENGTH = 200
OPEN_STATES = (RightsStatus.RECEIVED, RightsStatus.VERIFIED)


# --- the request register ---------------------------------------------------------------


def open_request(
    session: Session,
    kind: RightsKind | str,
    *,
    now: datetime,
    settings: Settings,
    contact: Contact | None = None,
    note: str | None = None,
) -> RightsRequest:
    """Register a request as received; it is due ``RIGHTS_DUE_DAYS`` after today (TIMEZONE)."""
    try:
        kind = RightsKind(kind)
    except ValueError:
        raise InvalidInput("kind", "must be access, rectification or erasure") from None
    received_on = window.local_today(now, settings.timezone)
    request = RightsRequest(
        contact_id=contact.id if contact is not None else None,
        kind=kind,
        status=RightsStatus.RECEIVED,
        received_at=now,
        due_on=received_on + timedelta(days=settings.rights_due_days),
        note=note,
    )
    session.add(request)
    session.flush()
    return request


def get_request(session: Session, request_id: int) -> RightsRequest:
    request = session.get(RightsRequest, request_id)
    if request is None:
        raise NotFound(f"no request {request_id}")
    return request


def mark_verified(
    session: Session, request: RightsRequest, *, now: datetime, verification: str = "email-link"
) -> RightsRequest:
    """Record that the requester proved to be the person (and how), before anything is done."""
    if request.status is not RightsStatus.RECEIVED:
        raise RequestStateError(f"request {request.id} is {request.status.value}, not received")
    request.status = RightsStatus.VERIFIED
    request.verification = verification
    request.verified_at = now
    return request


def close(
    session: Session,
    request: RightsRequest,
    *,
    now: datetime,
    handled_by: str,
    refused: bool = False,
    note: str | None = None,
) -> RightsRequest:
    """Close a request as done (identity must be verified first) or refused."""
    if request.status not in OPEN_STATES:
        raise RequestStateError(f"request {request.id} is already {request.status.value}")
    if not refused and request.status is not RightsStatus.VERIFIED:
        raise RequestStateError(f"request {request.id}: verify the requester's identity first")
    request.status = RightsStatus.REFUSED if refused else RightsStatus.DONE
    request.handled_by = handled_by
    request.closed_at = now
    if note is not None:
        request.note = note
    return request


def overdue(session: Session, today: date) -> list[RightsRequest]:
    """Return open requests whose due date has passed, the longest overdue first."""
    return list(
        session.scalars(
            select(RightsRequest)
            .where(RightsRequest.status.in_(OPEN_STATES), RightsRequest.due_on < today)
            .order_by(RightsRequest.due_on, RightsRequest.id)
        )
    )


def request_summary(request: RightsRequest) -> dict[str, Any]:
    """Describe a request for exports and listings (without the free-text note)."""
    return {
        "id": request.id,
        "kind": request.kind.value,
        "status": request.status.value,
        "received_at": _iso(request.received_at),
        "verification": request.verification,
        "verified_at": _iso(request.verified_at),
        "due_on": _iso(request.due_on),
        "handled_by": request.handled_by,
        "closed_at": _iso(request.closed_at),
    }


# --- access -----------------------------------------------------------------------------


def export(session: Session, contact: Contact, *, settings: Settings, now: datetime) -> dict:
    """Return everything held about the person as one JSON-ready document, and log the export."""
    document = {
        "generated_at": _iso(now),
        "contact": {
            **contacts.profile(contact, window_years=settings.marketing_window_years),
            "legal_hold": (
                {"reason": contact.legal_hold_reason, "until": _iso(contact.legal_hold_until)}
                if contact.legal_hold_reason
                else None
            ),
            "created_at": _iso(contact.created_at),
            "updated_at": _iso(contact.updated_at),
        },
        "subscriptions": [
            {
                "topic": sub.topic.slug,
                "name": sub.topic.name,
                "status": sub.status.value,
                "since": _iso(sub.created_at),
                "updated_at": _iso(sub.updated_at),
            }
            for sub in sorted(contact.subscriptions, key=lambda s: s.topic.slug)
        ],
        "consent_history": [
            {
                "kind": event.kind.value,
                "channel": event.channel,
                "topic": slug,
                "occurred_at": _iso(event.occurred_at),
                "detail": event.detail,
            }
            for event, slug in session.execute(
                select(ConsentEvent, Topic.slug)
                .outerjoin(Topic, Topic.id == ConsentEvent.topic_id)
                .where(ConsentEvent.contact_id == contact.id)
                .order_by(ConsentEvent.seq)
            )
        ],
        "deliveries": [
            {
                "campaign_id": campaign.id,
                "topic": campaign.topic.name,
                "subject": campaign.variant_for(contact.language).subject,
                "status": delivery.status.value,
                "sent_at": _iso(delivery.sent_at),
            }
            for delivery, campaign in session.execute(
                select(Delivery, Campaign)
                .join(Campaign, Campaign.id == Delivery.campaign_id)
                .where(Delivery.contact_id == contact.id)
                .order_by(Delivery.id)
                .options(selectinload(Campaign.variants), joinedload(Campaign.topic))
            )
        ],
        "rights_requests": [
            request_summary(r)
            for r in session.scalars(
                select(RightsRequest)
                .where(RightsRequest.contact_id == contact.id)
                .order_by(RightsRequest.id)
            )
        ],
        "suppressed": bool(contact.email)
        and suppression.is_suppressed(session, settings.suppression_key, contact.email),
    }
    consent.record(session, contact, EventKind.EXPORTED, channel="request", now=now)
    return document


# --- rectification ----------------------------------------------------------------------


def rectify(
    session: Session,
    contact: Contact,
    changes: dict[str, str | None],
    *,
    now: datetime,
    channel: str,
) -> dict[str, tuple[str | None, str | None]]:
    """Apply corrections; return ``{field: (old, new)}`` of what changed, for the confirmation.

    The ledger records only which fields changed, never the values.
    """
    if contact.status in (ContactStatus.ERASED, ContactStatus.ANONYMISED):
        raise InvalidInput("contact", "has been erased; there is nothing left to correct")
    cleaned = {name: _clean(name, value) for name, value in changes.items()}
    changed: dict[str, tuple[str | None, str | None]] = {}
    for name, new in cleaned.items():
        old = getattr(contact, name)
        old = old.value if isinstance(old, Language) else old
        if old == new:
            continue
        setattr(contact, name, Language(new) if name == "language" else new)
        changed[name] = (old, new)
    if changed:
        consent.record(
            session,
            contact,
            EventKind.RECTIFIED,
            channel=channel,
            now=now,
            detail={"fields": sorted(changed)},
        )
    return changed


def _clean(name: str, value: str | None) -> str | None:
    if name not in RECTIFIABLE:
        raise InvalidInput(name, f"cannot be corrected here (only {', '.join(RECTIFIABLE)})")
    text = (value or "").strip() or None
    if name == "language":
        if text not in {lang.value for lang in Language}:
            raise InvalidInput(name, "must be nl, fr or en")
        return text
    if text is not None and len(text) > MAX_NAME_LENGTH:
        raise InvalidInput(name, f"is longer than {MAX_NAME_LENGTH} characters")
    if text is not None and any(c in text for c in "\r\n\0"):
        raise InvalidInput(name, "may not contain line breaks")
    return text


# --- erasure ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureResult:
    """What erasure left behind: the fields a legal hold keeps, and why (empty: nothing)."""

    public_id: str
    kept: list[str] = field(default_factory=list)
    reason: str | None = None
    until: date | None = None


def hold_active(contact: Contact, today: date) -> bool:
    """Tell whether a legal hold still requires keeping some of this contact's data."""
    if not contact.legal_hold_reason:
        return False
    return contact.legal_hold_until is None or contact.legal_hold_until >= today


def remove_personal_data(session: Session, contact: Contact, *, keep: Iterable[str] = ()) -> None:
    """Clear personal fields and marketing data; events and delivery counts stay as they are.

    Subscriptions go; deliveries keep their status but lose the SMTP reply (it may quote the
    address); request notes are cleared.
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
    if contact.email:
        suppression.add(session, settings.suppression_key, contact.email, SuppressionReason.ERASURE)
    remove_personal_data(session, contact, keep=keep)
    contact.status = ContactStatus.ERASED
    consent.record(
        session, contact, EventKind.ERASED, channel=reason, now=now, detail={"kept": keep}
    )
    return ErasureResult(contact.public_id, keep, *_hold(contact, held))


def _hold(contact: Contact, held: bool) -> tuple[str | None, date | None]:
    return (contact.legal_hold_reason, contact.legal_hold_until) if held else (None, None)


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def open_requests(session: Session) -> list[tuple[RightsRequest, Contact | None]]:
    """Return the requests still to handle with their contact, earliest due first (the queue)."""
    return [
        (request, contact)
        for request, contact in session.execute(
            select(RightsRequest, Contact)
            .outerjoin(Contact, Contact.id == RightsRequest.contact_id)
            .where(RightsRequest.status.in_(OPEN_STATES))
            .order_by(RightsRequest.due_on, RightsRequest.id)
        )
    ]
