"""What went between us and one contact: the campaigns sent, and the mail that came back.

The contact page shows it so the team can answer "did she get the May newsletter?" and "why
is this address not mailed?" without reading logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from prefsvc.errors import NotFound
from prefsvc.models import Campaign, Contact, Delivery, InboundMessage

MAX_SHOWN = 100
# A raw report is shown up to this many characters: enough for any DSN or ARF report.
MAX_RAW_CHARS = 200_000


@dataclass(frozen=True)
class MailSent:
    """One campaign to this contact: its subject in the variant they were sent, and the outcome."""

    campaign_id: int
    subject: str
    topic: str
    status: str
    reason: str | None
    feedback: str | None
    at: datetime | None


@dataclass(frozen=True)
class Returned:
    """One report that came back about this contact (the raw text is fetched on request)."""

    id: int
    received_at: datetime
    kind: str
    status: str | None
    outcome: str


def mails_sent(session: Session, contact: Contact, *, limit: int = MAX_SHOWN) -> list[MailSent]:
    """Return the contact's deliveries, newest first, with subject and topic in their language."""
    rows = session.execute(
        select(Delivery, Campaign)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.contact_id == contact.id)
        .order_by(Delivery.id.desc())
        .limit(limit)
        .options(selectinload(Campaign.variants), selectinload(Campaign.topic))
    )
    found = []
    for delivery, campaign in rows:
        variant = campaign.variant_sent_to(contact.language) or campaign.variant_for(
            contact.language
        )
        found.append(
            MailSent(
                campaign_id=campaign.id,
                subject=variant.subject if variant else "",
                topic=campaign.topic.name_in(contact.language),
                status=delivery.status.value,
                reason=delivery.reason,
                feedback=delivery.feedback,
                at=delivery.sent_at or delivery.claimed_at or campaign.queued_at,
            )
        )
    return found


def returned(session: Session, contact: Contact, *, limit: int = MAX_SHOWN) -> list[Returned]:
    """Return the reports kept about this contact, newest first (kept INBOUND_KEEP_DAYS)."""
    rows = session.execute(
        select(
            InboundMessage.id,
            InboundMessage.received_at,
            InboundMessage.kind,
            InboundMessage.status,
            InboundMessage.outcome,
        )
        .where(InboundMessage.contact_id == contact.id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
    )
    return [Returned(*row) for row in rows]


def raw_report(session: Session, contact: Contact, message_id: int) -> str:
    """Return a kept report about this contact as text; NotFound for another contact's."""
    raw = session.scalar(
        select(InboundMessage.raw).where(
            InboundMessage.id == message_id, InboundMessage.contact_id == contact.id
        )
    )
    if raw is None:
        raise NotFound("no such report about this contact")
    return bytes(raw).decode("utf-8", errors="replace")[:MAX_RAW_CHARS]
