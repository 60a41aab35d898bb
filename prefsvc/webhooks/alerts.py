"""Telling admins that an endpoint was disabled: the banner's list and the mail's text.

The admin pages show a banner while any endpoint is disabled for failing
(``disabled_for_failing``); the worker that disabled it also mails ``WEBHOOK_ALERT_TO``.
The mail names the endpoint by id and host only (a URL may carry a token).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.mail.notices import N_, Notice, translate
from prefsvc.models import LANGUAGES, WebhookEndpoint
from prefsvc.webhooks import endpoints

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
