"""Every kind of notice a worker can send, in one table, and the delivery of one notice.

The table is explicit rather than filled by imports for their side effects: a worker process
knows every kind however it was started, and a newcomer finds all service mails here.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from prefsvc.consent import repermission
from prefsvc.mail.notices import Notice, send
from prefsvc.models import Contact
from prefsvc.privacy import rectification
from prefsvc.recipient import acknowledgements, signin, signup
from prefsvc.settings import Settings
from prefsvc.webhooks import alerts as webhook_alerts

log = logging.getLogger(__name__)


class Builder(Protocol):
    """Build one kind of notice for a contact; None when nothing should be sent after all."""

    def __call__(
        self,
        session: Session,
        contact: Contact,
        settings: Settings,
        params: dict[str, Any],
        *,
        now: datetime,
    ) -> Notice | None: ...


KINDS: dict[str, Builder] = {
    acknowledgements.OPTOUT: acknowledgements.build_optout,
    signin.KIND: signin.build,
    rectification.NOTICE: rectification.build_confirmation,
    repermission.REQUEST_NOTICE: repermission.build_request,
    repermission.REMINDER_NOTICE: repermission.build_reminder,
}


class AddressedBuilder(Protocol):
    """Build a notice to someone who is not a contact (yet): the address and the notice."""

    def __call__(
        self, session: Session, settings: Settings, params: dict[str, Any], *, now: datetime
    ) -> tuple[str, Notice] | None: ...


# Kinds held with no contact id: the builder finds the address from the params.
ADDRESSED: dict[str, AddressedBuilder] = {
    signup.KIND: signup.build,
    webhook_alerts.KIND: webhook_alerts.build,
}


def deliver(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    contact_id: int | None,
    params: dict[str, Any],
    now: datetime,
) -> str | None:
    """Build and send the notice ``kind`` for a contact; None if there is no one to send to.

    A contact erased or anonymised since the notice was queued has no address any more, and
    gets nothing. Builders only read, and the session's transaction is rolled back before the
    SMTP conversation: a worker never sits idle in a transaction, holding a snapshot that stops
    PostgreSQL's vacuum, while a mail server answers.
    """
    if kind in ADDRESSED:
        return _deliver_addressed(session, settings, kind=kind, params=params, now=now)
    builder = KINDS.get(kind)
    if builder is None:
        raise ValueError(f"unknown notice kind {kind!r}")
    contact = session.get(Contact, contact_id)
    if contact is None or not contact.email:
        log.info("notice %s for contact %s dropped: no address", kind, contact_id)
        return None
    to = contact.email
    notice = builder(session, contact, settings, params, now=now)
    session.rollback()
    if notice is None:
        return None
    message_id = send(settings, to=to, notice=notice, now=now, contact_id=contact_id, kind=kind)
    log.info("notice %s sent to contact %s", kind, contact_id)
    return message_id


def _deliver_addressed(
    session: Session, settings: Settings, *, kind: str, params: dict[str, Any], now: datetime
) -> str | None:
    """Build and send a notice of an ``ADDRESSED`` kind (rolled back before SMTP, as above)."""
    built = ADDRESSED[kind](session, settings, params, now=now)
    session.rollback()
    if built is None:
        log.info("notice %s dropped: nothing to confirm any more", kind)
        return None
    to, notice = built
    message_id = send(settings, to=to, notice=notice, now=now, kind=kind)
    log.info("notice %s sent", kind)
    return message_id
