"""Contacts: look-ups by address or public id, search, listing and the contact's document.

Addresses are compared in their canonical form (``prefsvc.addresses``); ``upsert`` applies
the CSV import's rules to one contact (``prefsvc.people.importing``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.addresses import normalise_email
from prefsvc.consent import window
from prefsvc.errors import NotFound
from prefsvc.models import (
    ConsentEvent,
    Contact,
    Topic,
)
from prefsvc.people import directory, importing

PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


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


def get_public(session: Session, public_id: str) -> Contact:
    """Return the contact with this public id (the id used in URLs) or raise NotFound."""
    contact = by_public_id(session, public_id) if PUBLIC_ID.fullmatch(public_id or "") else None
    if contact is None:
        raise NotFound("no contact with that id")
    return contact


def upsert(
    session: Session,
    *,
    email: str,
    first_name: str | None = None,
    last_name: str | None = None,
    organisation: str | None = None,
    language: str | None = None,
    role: str | None = None,
    basis: str | None = None,
    basis_date: date | None = None,
    topics: Iterable[str] = (),
    now: datetime,
    today: date,
    suppression_key: str,
    source: str = "api",
    imported_by: str | None = None,
) -> tuple[Contact, str]:
    """Create or update a contact by address with the CSV import's rules (CONTRACT §4).

    Absent values never erase stored ones, an unsubscribed topic is never resubscribed and a
    suppressed address raises ``Suppressed``. Returns the contact and ``created``, ``updated``
    or ``unchanged``.
    """
    cells = {
        "email": email,
        "first_name": first_name or "",
        "last_name": last_name or "",
        "organisation": organisation or "",
        "language": language or "",
        "role": role or "",
        "basis": basis or "",
        "basis_date": basis_date.isoformat() if basis_date else "",
        "topics": "|".join(topics),
    }
    outcome = importing.upsert_one(
        session,
        cells,
        now=now,
        today=today,
        suppression_key=suppression_key,
        source=source,
        imported_by=imported_by,
    )
    return get(session, email), outcome


@dataclass(frozen=True)
class ContactPage:
    """One page of a contact search; ``total`` counts every match."""

    items: list[Contact]
    total: int
    page: int
    per_page: int


def listing(
    session: Session,
    *,
    today: date,
    years: int,
    q: str | None = None,
    topic: str | None = None,
    language: str | None = None,
    status: str | None = None,
    window_days: int | None = None,
    bounced: bool = False,
    sort: str | None = None,
    order: str = "asc",
    page: int = 1,
    per_page: int = 50,
) -> ContactPage:
    """Return one page of contacts matching every filter given (the API's list).

    The admin's directory (``prefsvc.people.directory.find``) in the API's vocabulary:
    ``topic`` keeps contacts subscribed to it; ``status`` is a stored contact status
    (``unsubscribed``: objected to all marketing, the admin's "suppressed") or one of the
    directory's ``mailable`` and ``subscribed``, both read for ``topic`` when one is given.
    Without ``sort``, oldest first (by id).
    """
    filters = directory.Filters(
        q=q or "",
        topic=topic,
        receiving=topic,
        language=language,
        status=directory.API_STATUSES[status] if status else None,
        window_days=window_days,
        bounced=bounced,
        sort=sort or directory.ID_ORDER,
        descending=order == "desc",
    )
    found = directory.find(session, filters, today=today, years=years, page=page, per_page=per_page)
    return ContactPage(found.items, found.total, found.page, found.per_page)


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


def bounce_state(contact: Contact) -> dict[str, Any]:
    """Return what came back about the address (``prefsvc.inbound.policy`` sets it)."""
    return {
        "bounced_at": contact.bounced_at.isoformat() if contact.bounced_at else None,
        "code": contact.bounce_code,
        "diagnostic": contact.bounce_diagnostic,
        "soft_score": contact.bounce_score or 0,
        "last_soft_bounce_on": (
            contact.last_soft_bounce_on.isoformat() if contact.last_soft_bounce_on else None
        ),
        "complained_at": contact.complained_at.isoformat() if contact.complained_at else None,
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
        "bounce": bounce_state(contact),
        "subscriptions": [
            {
                "topic": s.topic.slug,
                "name": s.topic.name_in(contact.language),
                "status": s.status.value,
            }
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
    words = directory.words(text)
    if not words:
        return []
    query = select(Contact).where(directory.containing(words))
    return list(session.scalars(query.order_by(Contact.email).limit(limit)))
