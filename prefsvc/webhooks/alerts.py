"""Telling admins that an endpoint was disabled: the banner's list and the mail's text.

The admin pages show a banner while any endpoint is disabled for failing
(``disabled_for_failing``). The worker that disables it also holds a mail to
``WEBHOOK_ALERT_TO`` in the job outbox (``hold``), in the transaction of the disabling, so a
broker or SMTP outage delays the mail and never loses it; a worker builds it (``build``, a
``notice_kinds.ADDRESSED`` kind). The mail names the endpoint by id and host only (a URL may
carry a token).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.mail import notices
from prefsvc.mail.notices import N_, Notice, translate
from prefsvc.models import LANGUAGES, WebhookEndpoint
from prefsvc.settings import Settings
from prefsvc.webhooks import endpoints

KIND = "webhook-alert"

SUBJECT = N_("Webhook endpoint %(id)s disabled")
TEXT = N_(
    "Webhook endpoint %(id)s (%(host)s) failed for %(hours)s hours and was disabled. "
    "Its events wait; enable it in the admin (Webhooks) once the receiver works again."
)


def disabled_for_failing(session: Session) -> list[WebhookEndpoint]:
    """Return the endpoints disabled because they kept failing (what the banner names)."""
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.enabled.is_(False),
                WebhookEndpoint.disabled_reason == endpoints.DISABLED_FAILING,
            )
            .order_by(WebhookEndpoint.id)
        )
    )


def notice(endpoint: WebhookEndpoint, *, hours: int) -> Notice:
    """Return the alert mail, in every language of the service (staff read any of them)."""
    values = {"id": endpoint.id, "host": urlsplit(endpoint.url).hostname or "?", "hours": hours}
    subject = translate("en", SUBJECT, **values)
    text = "\n\n".join(translate(language, TEXT, **values) for language in LANGUAGES)
    return Notice(subject=subject, text=text + "\n")


def hold(session: Session, endpoint_id: int, *, now: datetime) -> None:
    """Hold the alert for an endpoint just disabled, in the caller's transaction."""
    notices.hold(session, KIND, None, {"endpoint": endpoint_id}, now=now)


def build(
    session: Session, settings: Settings, params: dict[str, Any], *, now: datetime
) -> tuple[str, Notice] | None:
    """Return the address and the alert; None when no one is to be told or nothing is wrong.

    Read when the mail goes, not when it was held: an endpoint enabled again meanwhile (or
    deleted), or ``WEBHOOK_ALERT_TO`` unset since, sends nothing.
    """
    to = parseaddr(settings.webhook_alert_to or "")[1]
    endpoint = session.get(WebhookEndpoint, params.get("endpoint"))
    if not to or endpoint is None or endpoint.enabled:
        return None
    return to, notice(endpoint, hours=settings.webhook_retry_hours)
