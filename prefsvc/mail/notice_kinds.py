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
from prefsvc.recipient import acknowledgements, signin
from prefsvc.settings import Settings

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


def deliver(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    contact_id: int,
    params: dict[str, Any],
    now: datetime,
) -> str | None:
    """Build and send the notice ``kind`` for a contact; None if there is no one to send to.

    A contact erased or anonymised since the notice was queued has no address any more, and
    gets nothing. Builders only read, and the session's transaction is rolled back before the
    SMTP conversation: a worker never sits idle in a transaction, holding a snapshot that stops
    PostgreSQL's vacuum, while a mail server answers.
    """
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
