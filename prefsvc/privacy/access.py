"""Access: everything held about a person, as a JSON document and as text they can read.

The privacy statement promises an overview within 30 days after identity is checked; the
export is recorded in the ledger (``exported``), so the overview itself shows it was made.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from babel.dates import format_date, format_datetime
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from prefsvc.consent import changes as consent
from prefsvc.consent import suppression
from prefsvc.inbound import intake
from prefsvc.mail import notices
from prefsvc.mail.notices import LANGUAGE_NAMES, N_
from prefsvc.models import (
    Campaign,
    ConsentEvent,
    Contact,
    Delivery,
    EventKind,
    RepermissionMail,
    RightsRequest,
    Topic,
)
from prefsvc.people import contacts
from prefsvc.privacy.register import request_summary
from prefsvc.settings import Settings


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
                "name": sub.topic.name_in(contact.language),
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
                "topic": campaign.topic.name_in(contact.language),
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
        "repermission_mails": [
            {
                "kind": mail.kind.value,
                "window_anchor": _iso(mail.anchor),
                "sent_at": _iso(mail.sent_at),
            }
            for mail in session.scalars(
                select(RepermissionMail)
                .where(RepermissionMail.contact_id == contact.id)
                .order_by(RepermissionMail.id)
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
        # Bounces, complaints and the returned messages kept about them (prefsvc.inbound).
        "mail_that_came_back": intake.for_access_export(session, contact),
        "suppressed": bool(contact.email)
        and suppression.is_suppressed(session, settings.suppression_key, contact.email),
    }
    consent.record(session, contact, EventKind.EXPORTED, channel="request", now=now)
    return document


# The readable version of the export: the same document, labelled in the person's language.
LABELS = {
    "email": N_("Email address"),
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "organisation": N_("Organisation"),
    "language": N_("Language"),
    "role": N_("Role"),
    "status": N_("Status"),
    "basis": N_("Why we may mail you"),
    "basis_date": N_("Since"),
    "window_expires_on": N_("We may keep you informed until"),
    "paused_until": N_("Mail paused until"),
    "legal_hold": N_("Kept because the law requires it"),
}
VALUES = {
    # contact status
    "active": N_("active"),
    "unsubscribed": N_("unsubscribed"),
    "erased": N_("erased"),
    "anonymised": N_("anonymised"),
    # basis and role
    "consent": N_("your consent"),
    "customer": N_("you are a customer"),
    "training": N_("you took part in a training"),
    "trainee": N_("trainee"),
    "teacher": N_("teacher"),
    # subscriptions and events
    "subscribed": N_("subscribed"),
    "imported": N_("added from our records"),
    "resubscribed": N_("subscribed again"),
    "objection": N_("unsubscribed from everything"),
    "preferences": N_("preferences changed"),
    "paused": N_("mail paused"),
    "renewed": N_("permission renewed"),
    "rectified": N_("details corrected"),
    "exported": N_("copy of your data made"),
    "bounced": N_("address bounced"),
    # deliveries and requests
    "sent": N_("sent"),
    "queued": N_("waiting to be sent"),
    "sending": N_("being sent"),
    "failed": N_("could not be delivered"),
    "excluded": N_("not sent"),
    "access": N_("access to your data"),
    "rectification": N_("correction of your data"),
    "erasure": N_("erasure of your data"),
    "received": N_("received"),
    "verified": N_("identity verified"),
    "done": N_("done"),
    "refused": N_("refused"),
}


REPERMISSION_LABELS = {
    "request": N_("question whether we may keep informing you"),
    "reminder": N_("reminder of that question"),
}


def export_text(document: dict[str, Any], *, language: str, tz: Any) -> str:
    """Render an access export as plain text the person can read, in ``language``."""

    def t(message: str) -> str:
        return notices.translate(language, message)

    def value(key: str | None) -> str:
        return t(VALUES[key]) if key in VALUES else (key or "")

    def day(text: str | None) -> str:
        return format_date(date.fromisoformat(text), "long", locale=language) if text else "-"

    def day_of(text: str) -> str:
        return format_date(
            datetime.fromisoformat(text).astimezone(tz).date(), "long", locale=language
        )

    def moment(text: str | None) -> str:
        if not text:
            return "-"
        instant = datetime.fromisoformat(text).astimezone(tz)
        return format_datetime(instant, "medium", tzinfo=tz, locale=language)

    person = document["contact"]
    details: list[tuple[str, str]] = []
    for key, label in LABELS.items():
        raw = person.get(key)
        if key == "language":
            shown = LANGUAGE_NAMES.get(raw, raw)
        elif key == "window_expires_on":
            shown = day((date.fromisoformat(raw) - timedelta(days=1)).isoformat()) if raw else "-"
        elif key in ("basis_date", "paused_until"):
            if raw is None:
                continue
            shown = day(raw)
        elif key == "legal_hold":
            if raw is None:
                continue
            shown = raw["reason"] + (f" ({day(raw['until'])})" if raw.get("until") else "")
        elif key in ("role", "status", "basis"):
            shown = value(raw) if raw else "-"
        else:
            shown = raw or "-"
        details.append((t(label), shown))
    return notices.render(
        "access_export.txt",
        language,
        generated_at=moment(document["generated_at"]),
        details=details,
        subscriptions=[
            (s["name"], value(s["status"]), day_of(s["since"])) for s in document["subscriptions"]
        ],
        history=[
            (moment(e["occurred_at"]), value(e["kind"]), e["channel"], e["topic"])
            for e in document["consent_history"]
        ],
        deliveries=[
            (moment(d["sent_at"]), d["subject"], d["topic"], value(d["status"]))
            for d in document["deliveries"]
        ],
        service_mails=[
            (moment(m["sent_at"]), t(REPERMISSION_LABELS[m["kind"]]))
            for m in document.get("repermission_mails", [])
        ],
        requests=[
            (moment(r["received_at"]), value(r["kind"]), value(r["status"]), day(r["due_on"]))
            for r in document["rights_requests"]
        ],
        suppressed=document["suppressed"],
    )


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()
