"""Re-permission: before a marketing window ends, ask the person whether to keep informing them.

The request goes ``REPERMISSION_DAYS`` before the window's end, the reminder
``REPERMISSION_REMINDER_DAYS`` before it; each at most once per window, which the database
guarantees (``repermission_mails`` is unique per contact, anchor and kind). The mail's one
button leads to a page reached by a signed link; pressing it there renews: a ``renewed`` event
in the ledger, and the anchor moves to that day. No answer: the audience rule excludes the
contact from the expiry date on, and retention anonymises them after the grace period.

"Due" is a range of anchors, not a day: a scheduler that was down for a week still mails
everyone whose window ends within the lead time, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from babel.dates import format_date
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from prefsvc.consent import changes as consent
from prefsvc.consent import suppression, window
from prefsvc.errors import InvalidToken, Suppressed
from prefsvc.mail import kit, notices
from prefsvc.mail.notices import N_, Notice
from prefsvc.mail.tokens import Signer
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    EventKind,
    RepermissionKind,
    RepermissionMail,
    Subscription,
    SubscriptionStatus,
)
from prefsvc.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "renewal-page"
RENEWABLE_STATES = (ContactStatus.ACTIVE, ContactStatus.UNSUBSCRIBED)  # links that open a page
REQUEST_NOTICE = "repermission_request"
REMINDER_NOTICE = "repermission_reminder"
NOTICE_KINDS = {
    RepermissionKind.REQUEST: REQUEST_NOTICE,
    RepermissionKind.REMINDER: REMINDER_NOTICE,
}
# A reminder follows a request only if the request went out at least this long before:
# someone first asked 10 days before the end is not reminded the next day.
REMINDER_GAP = timedelta(days=7)
_CHUNK = 500
SUBJECTS = {
    RepermissionKind.REQUEST: N_("Shall we keep you informed about our trainings?"),
    RepermissionKind.REMINDER: N_("Reminder: shall we keep you informed about our trainings?"),
}


@dataclass(frozen=True)
class Due:
    """One re-permission mail to send: to whom, for which window, which of the two."""

    contact_id: int
    anchor: date
    kind: RepermissionKind


def due(
    session: Session,
    *,
    today: date,
    now: datetime,
    years: int,
    request_days: int,
    reminder_days: int,
    suppression_key: str,
) -> list[Due]:
    """Return the re-permission mails due on ``today``, in one query (plus one suppression look-up).

    Only active contacts with an address, at least one subscribed topic and a window still open
    today that ends within ``request_days`` are asked; objections, erasures and anonymised
    contacts never are, nor is an address on the suppression list.
    """
    request = aliased(RepermissionMail)
    reminder = aliased(RepermissionMail)
    request_join = and_(
        request.contact_id == Contact.id,
        request.anchor == Contact.window_anchor,
        request.kind == RepermissionKind.REQUEST,
    )
    reminder_join = and_(
        reminder.contact_id == Contact.id,
        reminder.anchor == Contact.window_anchor,
        reminder.kind == RepermissionKind.REMINDER,
    )
    subscribed = exists().where(
        Subscription.contact_id == Contact.id,
        Subscription.status == SubscriptionStatus.SUBSCRIBED,
    )
    query = (
        select(Contact.id, Contact.email, Contact.window_anchor, request.id.label("request_id"))
        .outerjoin(request, request_join)
        .outerjoin(reminder, reminder_join)
        .where(
            Contact.status == ContactStatus.ACTIVE,
            Contact.email.is_not(None),
            Contact.window_anchor > window.last_expired_anchor(today, years),
            Contact.window_anchor
            <= window.last_expired_anchor(today + timedelta(days=request_days), years),
            subscribed,
            or_(
                request.id.is_(None),
                and_(
                    reminder.id.is_(None),
                    Contact.window_anchor
                    <= window.last_expired_anchor(today + timedelta(days=reminder_days), years),
                    request.sent_at <= now - REMINDER_GAP,
                ),
            ),
        )
        .order_by(Contact.id)
    )
    rows = session.execute(query).all()
    emails = [r.email for r in rows]
    blocked: set[str] = set()
    for start in range(0, len(emails), _CHUNK):  # the first run after deployment may find many
        blocked |= suppression.suppressed_among(
            session, suppression_key, emails[start : start + _CHUNK]
        )
    return [
        Due(
            contact_id=row.id,
            anchor=row.window_anchor,
            kind=RepermissionKind.REQUEST if row.request_id is None else RepermissionKind.REMINDER,
        )
        for row in rows
        if row.email not in blocked
    ]


def record_sent(session: Session, mails: list[Due], *, now: datetime) -> list[Due]:
    """Record the mails as sent before they are queued; return those this call recorded.

    A crash between recording and queueing loses a mail, never repeats one; a mail another
    scheduler recorded first (the unique key) is left to that scheduler.
    """
    if not mails:
        return []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(RepermissionMail)
        .on_conflict_do_nothing(index_elements=["contact_id", "anchor", "kind"])
        .returning(RepermissionMail.contact_id, RepermissionMail.kind)
    )
    rows = [
        {"contact_id": m.contact_id, "anchor": m.anchor, "kind": m.kind, "sent_at": now}
        for m in mails
    ]
    recorded = {(row.contact_id, row.kind) for row in session.execute(statement, rows)}
    return [m for m in mails if (m.contact_id, m.kind) in recorded]


def send_due(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    notify: Callable[[str, int, dict[str, Any]], None],
) -> list[Due]:
    """Record today's re-permission mails and hand each to ``notify`` (ids only), then commit.

    ``notify`` holds the notice in the job outbox, in the same transaction as the record: a
    mail is recorded as sent exactly when its notice is on its way.
    """
    today = window.local_today(now, settings.timezone)
    mails = due(
        session,
        today=today,
        now=now,
        years=settings.marketing_window_years,
        request_days=settings.repermission_days,
        reminder_days=settings.repermission_reminder_days,
        suppression_key=settings.suppression_key,
    )
    mails = record_sent(session, mails, now=now)
    for mail in mails:
        notify(NOTICE_KINDS[mail.kind], mail.contact_id, {"anchor": mail.anchor.isoformat()})
    session.commit()
    log.info(
        "re-permission: %d requests, %d reminders queued",
        sum(m.kind is RepermissionKind.REQUEST for m in mails),
        sum(m.kind is RepermissionKind.REMINDER for m in mails),
    )
    return mails


# --- renewing ---------------------------------------------------------------------------


def open_link(session: Session, signer: Signer, token: str) -> Contact:
    """Return the contact a renewal token names, or raise InvalidToken.

    Erased and anonymised contacts have nothing left to renew: their links answer like a
    forged one. A contact who objected still gets a page (saying nothing can be renewed).
    """
    public_id = signer.read_renewal(token)
    contact = session.scalar(select(Contact).where(Contact.public_id == public_id))
    if contact is None or contact.email is None or contact.status not in RENEWABLE_STATES:
        raise InvalidToken()
    return contact


def can_renew(session: Session, contact: Contact, suppression_key: str) -> bool:
    """Tell whether pressing the button would renew: not after an objection or suppression."""
    return (
        contact.status is ContactStatus.ACTIVE
        and contact.email is not None
        and not suppression.is_suppressed(session, suppression_key, contact.email)
    )


def renew(
    session: Session,
    contact: Contact,
    *,
    now: datetime,
    today: date,
    suppression_key: str,
    channel: str = CHANNEL,
) -> bool:
    """Renew the person's permission: a ``renewed`` event, and the anchor moves to ``today``.

    Renewing twice on one day records it once (returns False the second time). An objection
    or a suppressed address cannot be undone this way (raises ``Suppressed``).
    """
    if not can_renew(session, contact, suppression_key):
        raise Suppressed("the person objected to marketing mail; nothing to renew")
    last_renewal = session.scalar(
        select(ConsentEvent.detail)
        .where(ConsentEvent.contact_id == contact.id, ConsentEvent.kind == EventKind.RENEWED)
        .order_by(ConsentEvent.seq.desc())
        .limit(1)
    )
    if contact.window_anchor == today and (last_renewal or {}).get("anchor") == today.isoformat():
        return False
    previous = contact.window_anchor
    consent.touch_anchor(contact, today)
    consent.record(
        session,
        contact,
        EventKind.RENEWED,
        channel=channel,
        now=now,
        detail={
            "previous_anchor": previous.isoformat(),
            "anchor": contact.window_anchor.isoformat(),
        },
    )
    return True


# --- the mails --------------------------------------------------------------------------


def build_notice(
    session: Session,
    contact: Contact,
    settings: Settings,
    params: dict[str, Any],
    *,
    kind: RepermissionKind,
) -> Notice | None:
    """Build the request or reminder; None if the person renewed, left or was suppressed since."""
    if contact.window_anchor.isoformat() != params.get("anchor"):
        return None  # renewed or changed their preferences since: a new window, nothing to ask
    if not can_renew(session, contact, settings.suppression_key):
        return None

    language = contact.language.value
    signer = kit.signer(settings)
    expires = window.expires_on(contact.window_anchor, settings.marketing_window_years)
    context = {
        "language": language,
        "first_name": contact.first_name,
        "reminder": kind is RepermissionKind.REMINDER,
        "expires_on": format_date(expires, format="long", locale=language),
        "years": settings.marketing_window_years,
        "renew_url": f"{settings.base_url}/r/{signer.renewal_token(contact.public_id)}",
        "preferences_url": (f"{settings.base_url}/p/{signer.preferences_token(contact.public_id)}"),
    }
    return Notice(
        subject=notices.translate(language, SUBJECTS[kind]),
        text=notices.render("repermission.txt", language, **context),
        html=notices.render("repermission.html", language, **context),
    )


def build_request(
    session: Session, contact: Contact, settings: Settings, params: dict[str, Any], *, now: datetime
) -> Notice | None:
    """Build the ``REQUEST_NOTICE`` (see ``build_notice``)."""
    return build_notice(session, contact, settings, params, kind=RepermissionKind.REQUEST)


def build_reminder(
    session: Session, contact: Contact, settings: Settings, params: dict[str, Any], *, now: datetime
) -> Notice | None:
    """Build the ``REMINDER_NOTICE`` (see ``build_notice``)."""
    return build_notice(session, contact, settings, params, kind=RepermissionKind.REMINDER)
