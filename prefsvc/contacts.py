"""Contacts: address normalisation and look-ups.

Addresses are stored lower-cased so that ``Ana@Example.org`` and ``ana@example.org`` are one
contact, with a database constraint to keep it that way.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from prefsvc import window
from prefsvc.errors import InvalidInput, NotFound
from prefsvc.models import ConsentEvent, Contact, Topic

MAX_EMAIL_LENGTH = 254


def normalise_email(text: str) -> str:
    """Return the canonical (lower-case, IDNA-normalised) form of an address or raise."""
    candidate = (text or "").strip()
    if not candidate:
        raise InvalidInput("email", "is empty")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidInput("email", f"is longer than {MAX_EMAIL_LENGTH} characters")
    try:
        result = validate_email(candidate, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InvalidInput("email", f"is not a valid address ({exc})") from None
    return result.normalized.lower()


def find(session: Session, email: str) -> Contact | None:
    """Return the contact with this address (any case), or None."""
    return session.scalar(select(Contact).where(Contact.email == normalise_email(email)))


def get(session: Session, email: str) -> Contact:
    """Return the contact with this address or raise NotFound."""
    contact = find(session, email)
    if contact is None:
        raise NotFound("no contact with that address")
    return contact


def by_public_id(session: Session, public_id: str) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.public_id == public_id))


def profile(contact: Contact, *, window_years: int) -> dict[str, object]:
    """Return what we hold in the contact row itself, JSON-ready (show and access export)."""

    def iso(value: object) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "public_id": contact.public_id,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "organisation": contact.organisation,
        "language": contact.language.value,
        "role": contact.role.value if contact.role else None,
        "status": contact.status.value,
        "basis": contact.basis.value if contact.basis else None,
        "basis_date": iso(contact.basis_date),
        "window_anchor": iso(contact.window_anchor),
        "window_expires_on": iso(window.expires_on(contact.window_anchor, window_years)),
        "paused_until": iso(contact.paused_until),
    }


def document(session: Session, contact: Contact, years: int) -> dict[str, Any]:
    """Return the contact with subscriptions and consent history (``contacts show``, admin UI)."""
    events = session.execute(
        select(ConsentEvent, Topic.slug)
        .outerjoin(Topic, Topic.id == ConsentEvent.topic_id)
        .where(ConsentEvent.contact_id == contact.id)
        .order_by(ConsentEvent.seq)
    )
    subscriptions = sorted(contact.subscriptions, key=lambda s: s.topic.slug)
    return {
        **profile(contact, window_years=years),
        "subscriptions": [
            {"topic": s.topic.slug, "name": s.topic.name, "status": s.status.value}
            for s in subscriptions
        ],
        "consent_history": [
            {
                "kind": event.kind.value,
                "channel": event.channel,
                "topic": slug,
                "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
                "detail": event.detail,
            }
            for event, slug in events
        ],
    }


SEARCH_LIMIT = 50


def search(session: Session, text: str, *, limit: int = SEARCH_LIMIT) -> list[Contact]:
    """Find contacts whose address, name or organisation contains ``text`` (any case)."""
    words = (text or "").strip().lower().split()
    if not words:
        return []
    query = select(Contact)
    for word in words[:5]:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        Contact.email,
                        Contact.first_name,
                        Contact.last_name,
                        Contact.organisation,
                    )
                )
            )
        )
    return list(session.scalars(query.order_by(Contact.email).limit(limit)))
