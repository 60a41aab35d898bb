"""The person's rights from the preference centre: corrections, and copy or erasure requests.

A correction through the centre is registered as a rectification request, verified (the link
is the person's) and closed at once. A copy or erasure waits in the register for a fresh
email confirmation (a sign-in link), then is carried out and closed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.consent import changes as consent
from prefsvc.errors import InvalidInput, RequestStateError
from prefsvc.models import Contact, RightsKind, RightsRequest, RightsStatus
from prefsvc.privacy import access, erasure, rectification, register
from prefsvc.recipient.centre import CHANNEL
from prefsvc.settings import Settings

SELF_SERVICE = "self-service"
ASKABLE = (RightsKind.ACCESS, RightsKind.ERASURE)


def correct_details(
    session: Session,
    contact: Contact,
    changes: dict[str, str | None],
    *,
    settings: Settings,
    now: datetime,
    today: date,
) -> dict[str, tuple[str | None, str | None]]:
    """Correct name and organisation; return ``{field: (old, new)}`` of what changed.

    A change is registered as a rectification request, opened, verified (the link is the
    person's) and closed at once; nothing changed registers nothing.
    """
    changed = rectification.rectify(session, contact, changes, now=now, channel=CHANNEL)
    if not changed:
        return changed
    consent.touch_anchor(contact, today)
    request = register.open_request(
        session, RightsKind.RECTIFICATION, now=now, settings=settings, contact=contact
    )
    register.mark_verified(session, request, now=now, verification="preference-link")
    register.close(session, request, now=now, handled_by=SELF_SERVICE)
    return changed


def ask_for(
    session: Session,
    contact: Contact,
    kind: RightsKind | str,
    *,
    settings: Settings,
    now: datetime,
) -> RightsRequest:
    """Register a copy or erasure request, waiting for a fresh email confirmation.

    A request of the same kind still waiting is reused, so repeated clicks add no entries.
    """
    kind = RightsKind(kind)
    if kind not in ASKABLE:
        raise InvalidInput("kind", "must be access or erasure")
    waiting = session.scalar(
        select(RightsRequest)
        .where(
            RightsRequest.contact_id == contact.id,
            RightsRequest.kind == kind,
            RightsRequest.status == RightsStatus.RECEIVED,
        )
        .order_by(RightsRequest.id)
        .limit(1)
    )
    if waiting is not None:
        return waiting  # asking again sends a new link for the same register entry
    return register.open_request(session, kind, now=now, settings=settings, contact=contact)


def confirm_request(
    session: Session, contact: Contact, request_id: int, *, now: datetime
) -> RightsRequest:
    """Mark the person's own waiting copy or erasure request as verified by the email link."""
    request = waiting_request(session, contact, request_id)
    if request is None:
        raise RequestStateError("no such request waiting for confirmation")
    return register.mark_verified(session, request, now=now, verification="email-link")


def waiting_request(
    session: Session, contact: Contact, request_id: int | None
) -> RightsRequest | None:
    """Return the copy or erasure request a sign-in link confirms, if it still waits."""
    if request_id is None:
        return None
    request = session.get(RightsRequest, request_id)
    if request is None or request.contact_id != contact.id or request.kind not in ASKABLE:
        return None
    return request if request.status is RightsStatus.RECEIVED else None


def fulfil(
    session: Session, request: RightsRequest, contact: Contact, *, settings: Settings, now: datetime
) -> dict | erasure.ErasureResult:
    """Carry out a verified copy or erasure request and close it in the register."""
    if request.status is not RightsStatus.VERIFIED:
        raise RequestStateError(f"request {request.id} is not verified")
    if request.kind is RightsKind.ACCESS:
        result: dict | erasure.ErasureResult = access.export(
            session, contact, settings=settings, now=now
        )
    else:
        result = erasure.erase(session, contact, settings=settings, now=now, reason=SELF_SERVICE)
    register.close(session, request, now=now, handled_by=SELF_SERVICE)
    return result
