"""The register of data-subject requests: received, verified, closed, and when each is due.

The privacy statement promises an answer within ``RIGHTS_DUE_DAYS`` (30) after a request
comes in. The register records when each request came in, how and when identity was
verified, when it is due and who closed it; what was done is in the ledger, without
personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc import paging
from prefsvc.consent import window
from prefsvc.errors import InvalidInput, NotFound, RequestStateError
from prefsvc.models import Contact, RightsKind, RightsRequest, RightsStatus
from prefsvc.settings import Settings

OPEN_STATES = (RightsStatus.RECEIVED, RightsStatus.VERIFIED)


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


def entries(session: Session, *, only_open: bool = False) -> list[RightsRequest]:
    """Return the request register, newest first (optionally only the open requests)."""
    query = select(RightsRequest).order_by(
        RightsRequest.received_at.desc(), RightsRequest.id.desc()
    )
    if only_open:
        query = query.where(RightsRequest.status.in_(OPEN_STATES))
    return list(session.scalars(query))


def requests(
    session: Session,
    *,
    status: RightsStatus | str | None = None,
    open_only: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[RightsRequest], int]:
    """Return one page of the register (oldest due first) and the number of matches."""
    query = select(RightsRequest)
    if status is not None:
        query = query.where(RightsRequest.status == RightsStatus(status))
    if open_only:
        query = query.where(RightsRequest.status.in_(OPEN_STATES))
    return paging.one_page(
        session,
        query,
        order_by=[RightsRequest.due_on, RightsRequest.id],
        page=page,
        per_page=per_page,
    )


def contact_public_ids(session: Session, requests: Iterable[RightsRequest]) -> dict[int, str]:
    """Map the contact ids of these requests to public ids, in one query (API listings)."""
    ids = {r.contact_id for r in requests if r.contact_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Contact.id, Contact.public_id).where(Contact.id.in_(ids)))
    return {contact_id: public_id for contact_id, public_id in rows}


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


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()
