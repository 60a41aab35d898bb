"""What the demo's mail brings back: one hard bounce (RFC 3464) and one complaint (RFC 5965).

The demo delivers into a Maildir, where nothing ever bounces; so, as a receiving MTA and a
mailbox provider would, this writes a DSN for one delivered message and an abuse report for
another, each naming the delivery only by its signed VERP token, and hands them to the same
``intake.receive`` that ``prefsvc inbound serve`` calls. The campaign page then shows one
bounced and one complained, and both contacts are left out of the next campaign.
"""

from __future__ import annotations

from datetime import date, datetime
from email.utils import format_datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.inbound import intake, verp
from prefsvc.inbound.verp import BOUNCES, DELIVERY
from prefsvc.models import Contact, Delivery, DeliveryStatus

DEMO_BOUNCE_DOMAIN = "bounces.demo.invalid"  # when BOUNCE_DOMAIN is unset


def feed(session: Session, settings, campaign_id: int, *, now: datetime, today: date) -> list[str]:
    """Bounce the campaign's first delivered message and complain about its second; return
    the outcomes (``bounced``, ``complained``). The caller commits."""
    rows = session.execute(
        select(Delivery.id, Contact.email)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.id)
        .limit(2)
    ).all()
    domain = settings.bounce_domain or DEMO_BOUNCE_DOMAIN
    keys = intake.Intake.from_settings(settings)
    outcomes = []
    for (delivery_id, email), build in zip(rows, (_dsn, _complaint), strict=False):
        sender = verp.codec(settings.secret_keys).address(BOUNCES, DELIVERY, delivery_id, domain)
        raw = build(email, sender, now)
        received = intake.receive(session, raw, recipient=sender, now=now, today=today, intake=keys)
        outcomes.append(received.outcome)
    return outcomes


def _report(
    headers: dict[str, str], kind: str, fields: str, text: str, sender: str, email: str
) -> bytes:
    """A multipart/report: human text, the machine-readable part, the returned headers."""
    boundary = "demo-report-boundary"
    lines = [f"{name}: {value}" for name, value in headers.items()]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type={kind}; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        text,
        f"--{boundary}",
        f"Content-Type: message/{kind}",
        "",
        fields,
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        f"Return-Path: <{sender}>",
        f"To: {email}",
        "Subject: newsletter",
        "",
        f"--{boundary}--",
        "",
    ]
    return "\n".join(lines).encode("ascii")


def _dsn(email: str, sender: str, now: datetime) -> bytes:
    return _report(
        {
            "From": "Mail Delivery System <MAILER-DAEMON@mx.demo.invalid>",
            "To": sender,
            "Subject": "Undelivered Mail Returned to Sender",
            "Date": format_datetime(now),
            "Auto-Submitted": "auto-replied",
        },
        "delivery-status",
        "Reporting-MTA: dns; mx.demo.invalid\n\n"
        f"Final-Recipient: rfc822; {email}\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does "
        "not exist",
        f"Your message to {email} could not be delivered: no such mailbox.",
        sender,
        email,
    )


def _complaint(email: str, sender: str, now: datetime) -> bytes:
    return _report(
        {
            "From": "feedback@fbl.demo.invalid",
            "To": sender,
            "Subject": "Complaint about message",
            "Date": format_datetime(now),
        },
        "feedback-report",
        f"Feedback-Type: abuse\nUser-Agent: demo-fbl/1.0\nVersion: 1\n"
        f"Original-Mail-From: <{sender}>\nOriginal-Rcpt-To: <{email}>",
        "This is an email abuse report: the recipient marked the message as spam.",
        sender,
        email,
    )
