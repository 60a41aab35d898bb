"""Sign-in links by mail: access to the preference centre without an old newsletter.

The request for a link answers the same way, in the same time, for any address: the view
always queues one notice, for the contact found or for nobody (id 0, dropped by the worker),
and the worker decides whether anything is sent. A sign-in link is valid for 24 hours and is
the fresh proof of holding the address that copy and erasure requests need.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from hashlib import sha256
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.errors import InvalidInput
from prefsvc.mail import kit, notices
from prefsvc.mail.notices import N_, Notice
from prefsvc.models import Contact, RightsKind, RightsRequest, RightsStatus
from prefsvc.people import contacts
from prefsvc.recipient.links import LINKABLE
from prefsvc.settings import Settings

KIND = "signin"
NOBODY = 0


def recipient_id(session: Session, email: str) -> int:
    """Return the id to queue a sign-in link for: the contact's, or NOBODY.

    Raises InvalidInput for text that is not an address at all (that says nothing about
    whether an address is known).
    """
    row = session.execute(
        select(Contact.id, Contact.status).where(Contact.email == contacts.normalise_email(email))
    ).first()
    if row is None or row.status not in LINKABLE:
        return NOBODY
    return row.id


def address_key(email: str, secret: str) -> str:
    """Key a rate limit on an address without keeping the address (keyed hash)."""
    try:
        normalised = contacts.normalise_email(email)
    except InvalidInput:
        normalised = (email or "").strip().lower()
    return hmac.new(secret.encode(), normalised.encode(), sha256).hexdigest()[:32]


def link(settings: Settings, contact: Contact, request_id: int | None, *, now: datetime) -> str:
    """Return a sign-in link valid for 24 hours from ``now`` (confirming ``request_id``, if any)."""
    token = kit.signer(settings).signin_token(contact.public_id, request_id, now=now)
    return f"{settings.base_url}/p/{token}"


def build(
    session: Session, contact: Contact, settings: Settings, params: dict[str, Any], *, now: datetime
) -> Notice | None:
    """Mail a 24-hour link; for a copy or erasure request, say that it confirms that request."""
    if contact.status not in LINKABLE:
        return None
    request_id = params.get("request_id")
    request = session.get(RightsRequest, int(request_id)) if request_id else None
    if request is not None and (
        request.contact_id != contact.id or request.status is not RightsStatus.RECEIVED
    ):
        return None
    language = contact.language.value
    text = notices.render(
        "signin.txt",
        language,
        contact=contact,
        url=link(settings, contact, request.id if request else None, now=now),
        access=request is not None and request.kind is RightsKind.ACCESS,
        erasure=request is not None and request.kind is RightsKind.ERASURE,
    )
    if request is None:
        subject = N_("Your link to your preferences")
    else:
        subject = N_("Confirm your request")
    return Notice(subject=notices.translate(language, subject), text=text)
