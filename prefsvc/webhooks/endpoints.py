"""Webhook endpoints an admin registers: create, list, disable, enable, rotate the secret.

A URL must be http(s) with a host; the events must be known ones (``events.ALL``). A
rotated-out secret keeps signing for ``ROTATION_OVERLAP`` beside the new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from prefsvc.errors import InvalidInput, NotFound
from prefsvc.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from prefsvc.webhooks import events, signing

ROTATION_OVERLAP = timedelta(hours=24)
DISABLED_BY_ADMIN = "admin"
DISABLED_FAILING = "failing"


def check_url(url: str) -> str:
    """Return the URL trimmed, or raise InvalidInput naming the field."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise InvalidInput("url", "must be an absolute http:// or https:// URL")
    return url


def check_events(names: Iterable[str]) -> list[str]:
    """Return the events in the canonical order, or raise InvalidInput naming an unknown one."""
    chosen = {name.strip() for name in names if name.strip()}
    unknown = sorted(chosen - set(events.ALL))
    if unknown:
        raise InvalidInput(
            "events", f"unknown event {unknown[0]!r}; known: {', '.join(events.ALL)}"
        )
    if not chosen:
        raise InvalidInput("events", "choose at least one event")
    return [name for name in events.ALL if name in chosen]


def create(
    session: Session,
    url: str,
    event_names: Iterable[str],
    *,
    now: datetime,
    description: str | None = None,
) -> WebhookEndpoint:
    """Register an endpoint with a fresh secret; the caller shows the secret to the admin."""
    endpoint = WebhookEndpoint(
        url=check_url(url),
        events=check_events(event_names),
        description=(description or "").strip()[:200] or None,
        secret=signing.new_secret(),
        enabled=True,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def listing(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def disable(
    session: Session, endpoint: WebhookEndpoint, *, now: datetime, reason: str = DISABLED_BY_ADMIN
) -> bool:
    """Stop delivering to the endpoint; its pending deliveries wait. False if it already was."""
    if not endpoint.enabled:
        return False
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason
    return True


def enable(session: Session, endpoint: WebhookEndpoint, *, now: datetime) -> bool:
    """Deliver again, starting with what waited; the failure clock starts afresh."""
    if endpoint.enabled:
        return False
    endpoint.enabled = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.failing_since = None
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
        )
        .values(next_attempt_at=now, pending_since=now)
    )
    return True


def rotate_secret(session: Session, endpoint: WebhookEndpoint, *, now: datetime) -> str:
    """Give the endpoint a new secret; the old one still signs for ``ROTATION_OVERLAP``."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + ROTATION_OVERLAP
    endpoint.secret = signing.new_secret()
    return endpoint.secret


def signing_secrets(endpoint: WebhookEndpoint | Row[Any], now: datetime) -> list[str]:
    """Return the secrets that sign now: the current one, and the previous during overlap.

    ``endpoint`` may be a row with the endpoint's secret columns (``delivery.prepare``).
    """
    current = [endpoint.secret]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and now < until:
        current.append(endpoint.previous_secret)
    return current


def summary(endpoint: WebhookEndpoint) -> dict[str, object]:
    """Return the endpoint as the CLI and the API show it (never its secret)."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "failing_since": events.iso(endpoint.failing_since) if endpoint.failing_since else None,
        "disabled_at": events.iso(endpoint.disabled_at) if endpoint.disabled_at else None,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": events.iso(endpoint.created_at),
    }
