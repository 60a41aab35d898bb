"""Data-subject rights: the request register, access export, rectification and erasure.

The privacy statement promises an overview within 30 days after identity is checked, a
correction with an overview of the change, and erasure unless the law requires keeping data.
The register records when each request came in, how and when identity was verified, when it
is due and who closed it; the ledger records what was done, without personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from prefsvc import paging
from prefsvc.consent import changes as consent
from prefsvc.consent import suppression, window
from prefsvc.errors import InvalidInput, InvalidToken, NotFound, RequestStateError
from prefsvc.mail import notices
from prefsvc.mail.notices import N_, Notice
from prefsvc.mail.tokens import Sealer
from prefsvc.models import (
    LANGUAGES,
    Campaign,
    ConsentEvent,
    Contact,
    ContactStatus,
    Delivery,
    EventKind,
    Language,
    RepermissionMail,
    RightsKind,
    RightsRequest,
    RightsStatus,
    SuppressionReason,
    Topic,
)
from prefsvc.people import contacts
from prefsvc.settings import Settings

log = logging.getLogger(__name__)

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


def register(session: Session, *, only_open: bool = False) -> list[RightsRequest]:
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
    from babel.dates import format_date, format_datetime

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
        if text not in LANGUAGES:
            raise InvalidInput(name, "must be nl, fr or en")
        return text
    if text is not None and len(text) > MAX_NAME_LENGTH:
        raise InvalidInput(name, f"is longer than {MAX_NAME_LENGTH} characters")
    if text is not None and any(c in text for c in "\r\n\0"):
        raise InvalidInput(name, "may not contain line breaks")
    return text


# The confirmation lists old -> new: personal data, so it crosses the broker sealed, and a
# confirmation not sent within a week is dropped rather than sent stale.
RECTIFICATION_NOTICE = "rectification_confirmed"
SEALED_MAX_AGE_SECONDS = 7 * 24 * 3600
FIELD_LABELS = {
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "organisation": N_("Organisation"),
    "language": N_("Language"),
}
LANGUAGE_NAMES = {"nl": "Nederlands", "fr": "Français", "en": "English"}


def confirmation_params(
    settings: Settings, changes: dict[str, tuple[str | None, str | None]], *, now: datetime
) -> dict[str, str]:
    """Return the notice parameters of a rectification confirmation (old and new, sealed)."""
    sealed = Sealer(settings.secret_keys).seal({k: list(v) for k, v in changes.items()}, now=now)
    return {"changes": sealed}


def rectification_notice(
    contact: Contact, changes: dict[str, tuple[str | None, str | None]] | dict[str, list]
) -> Notice:
    """Build the overview of a correction, old -> new, in the person's (possibly new) language."""
    language = contact.language.value

    def shown(name: str, value: str | None) -> str:
        if value is None:
            return notices.translate(language, N_("(empty)"))
        return LANGUAGE_NAMES.get(value, value) if name == "language" else value

    lines = [
        (notices.translate(language, FIELD_LABELS[name]), shown(name, old), shown(name, new))
        for name in RECTIFIABLE
        if name in changes
        for old, new in [changes[name]]
    ]
    context = {"first_name": contact.first_name, "language": language, "lines": lines}
    return Notice(
        subject=notices.translate(language, N_("Your details have been corrected")),
        text=notices.render("rectification.txt", language, **context),
        html=notices.render("rectification.html", language, **context),
    )


def _confirmation_builder(
    session: Session, contact: Contact, settings: Settings, params: dict[str, Any]
) -> Notice | None:
    from prefsvc import clock

    try:
        changes = Sealer(settings.secret_keys).unseal(
            str(params.get("changes", "")),
            now=clock.now(),
            max_age_seconds=SEALED_MAX_AGE_SECONDS,
        )
    except InvalidToken:
        log.warning("rectification confirmation for contact %s dropped: stale", contact.id)
        return None
    if not isinstance(changes, dict) or not set(changes) <= set(RECTIFIABLE):
        return None
    if contact.status in (ContactStatus.ERASED, ContactStatus.ANONYMISED):
        return None
    return rectification_notice(contact, changes)


notices.register(RECTIFICATION_NOTICE, _confirmation_builder)


# --- erasure ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureResult:
    """What erasure left behind: the fields a legal hold keeps, and why (empty: nothing)."""

    public_id: str
    kept: list[str] = field(default_factory=list)
    reason: str | None = None
    until: date | None = None


MAX_HOLD_REASON = 500


def set_legal_hold(
    session: Session,
    contact: Contact,
    *,
    reason: str | None,
    until: date | None,
    now: datetime,
    channel: str = "source-system",
) -> bool:
    """Record (or, with ``reason`` None, lift) the source system's legal hold on a contact.

    A hold makes erasure keep the identifying fields the law requires (``HELD_FIELDS``) until
    ``until`` (None: until lifted). The ledger records that the hold changed, never the
    reason's text, so the change is provable and shows in the person's access export.
    Return False when nothing changed.
    """
    if contact.status in (ContactStatus.ERASED, ContactStatus.ANONYMISED):
        raise InvalidInput("contact", "has been erased; there is nothing left to hold")
    text = (reason or "").strip() or None
    if text is None and until is not None:
        raise InvalidInput("reason", "is required with an end date")
    if text is not None:
        if len(text) > MAX_HOLD_REASON:
            raise InvalidInput("reason", f"is longer than {MAX_HOLD_REASON} characters")
        if any(c in text for c in "\r\n\0"):
            raise InvalidInput("reason", "may not contain line breaks")
    if until is not None and until < now.date():
        raise InvalidInput("until", "is in the past")
    if (contact.legal_hold_reason, contact.legal_hold_until) == (text, until):
        return False
    contact.legal_hold_reason = text
    contact.legal_hold_until = until
    consent.record(
        session,
        contact,
        EventKind.RECTIFIED,
        channel=channel,
        now=now,
        detail={
            "fields": ["legal_hold_reason", "legal_hold_until"],
            "legal_hold": "set" if text else "lifted",
            "until": _iso(until),
        },
    )
    return True


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
