"""The audit log: who (an API key or an admin user) did what to which object, and when.

Call ``record`` once for every change made through the API or the admin UI, in the same
transaction as the change, so the log never claims a change that was rolled back:

    audit.record(session, actor="apikey:3", action="contact.erase",
                 target="contact:Xy12...", detail={"kept": []}, now=clock.now())

``actor`` is ``"apikey:<id>"`` (API) or ``"user:<username>"`` (admin UI); ``target``
names the object by a public or database id (``"contact:<public_id>"``, ``"campaign:12"``).
Ids only: an address is refused, because the log outlives erasure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc import paging
from prefsvc.models import AuditEvent

_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+")
MAX_ACTION = 64
MAX_TEXT = 200


def _refuse_addresses(value: Any, where: str) -> None:
    if isinstance(value, str):
        if _ADDRESS.search(value):
            raise ValueError(f"audit {where} may not hold an address")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_addresses(key, where)
            _refuse_addresses(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_addresses(item, where)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime,
) -> AuditEvent:
    """Append one entry; ``detail`` holds ids and counts, never personal data."""
    if not actor or len(actor) > MAX_TEXT or not action or len(action) > MAX_ACTION:
        raise ValueError("audit actor and action are required and short")
    if target is not None and len(target) > MAX_TEXT:
        raise ValueError("audit target is too long")
    for where, value in (("actor", actor), ("target", target), ("detail", detail or {})):
        _refuse_addresses(value, where)
    event = AuditEvent(
        occurred_at=now, actor=actor, action=action, target=target, detail=dict(detail or {})
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEvent]
    total: int
    page: int
    per_page: int


def recent(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> AuditPage:
    """Return one page of the log, newest first, optionally for one actor or action."""
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    items, total = paging.one_page(
        session,
        query,
        order_by=[AuditEvent.occurred_at.desc(), AuditEvent.id.desc()],
        page=page,
        per_page=per_page,
    )
    return AuditPage(items, total, page, per_page)


def describe(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "detail": event.detail,
    }
