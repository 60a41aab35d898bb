"""API keys: bearer secrets for the source systems and scripts of the marketing team.

Only the SHA-256 of a key is stored, so a copy of the database gives no working key; the key
itself is shown once, when it is created. Each key has one role, and the role decides which
routes it may call (``PERMISSIONS``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.errors import InvalidInput, NotFound
from prefsvc.models import ApiKey, StaffRole

KEY_PREFIX = "psk_"
MAX_NAME_LENGTH = 200
MAX_KEY_LENGTH = 200

# What each role may do; admin may do everything.
PERMISSIONS: dict[str, frozenset[StaffRole]] = {
    "topics:read": frozenset({StaffRole.MARKETING}),
    "topics:write": frozenset({StaffRole.MARKETING}),
    "contacts:read": frozenset({StaffRole.MARKETING, StaffRole.PRIVACY}),
    "contacts:write": frozenset({StaffRole.MARKETING}),
    "contacts:erase": frozenset({StaffRole.PRIVACY}),
    "contacts:export": frozenset({StaffRole.PRIVACY}),
    "campaigns": frozenset({StaffRole.MARKETING}),
    "imports": frozenset({StaffRole.MARKETING}),
    "suppression:check": frozenset({StaffRole.MARKETING, StaffRole.PRIVACY}),
    "rights": frozenset({StaffRole.PRIVACY}),
    "legal-hold": frozenset({StaffRole.PRIVACY}),
    "audit:read": frozenset(),
    "webhooks": frozenset(),
    "changes:read": frozenset({StaffRole.MARKETING, StaffRole.PRIVACY}),
}


def allows(role: StaffRole, permission: str) -> bool:
    """Tell whether a key of this role may use a route needing ``permission`` (unknown: no)."""
    if permission not in PERMISSIONS:
        return False
    return role is StaffRole.ADMIN or role in PERMISSIONS[permission]


def roles_for(permission: str) -> list[str]:
    """Return the roles allowed ``permission``, for the API documentation."""
    return sorted({r.value for r in PERMISSIONS[permission]} | {StaffRole.ADMIN.value})


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create(
    session: Session, name: str, role: StaffRole | str, *, now: datetime
) -> tuple[ApiKey, str]:
    """Create a key; return the row and the key itself, which is never stored or shown again."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name", "is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("name", f"is longer than {MAX_NAME_LENGTH} characters")
    try:
        role = StaffRole(role)
    except ValueError:
        raise InvalidInput("role", "must be marketing, privacy or admin") from None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:12], key_hash=digest(key), role=role, created_at=now)
    session.add(row)
    session.flush()
    return row, key


def authenticate(session: Session, presented: str, *, now: datetime) -> ApiKey | None:
    """Return the live key matching ``presented`` (and note its use), or None."""
    if not presented or len(presented) > MAX_KEY_LENGTH:
        return None
    wanted = digest(presented)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == wanted))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, wanted):
        return None
    row.last_used_at = now
    return row


def all_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke(session: Session, key_id: int, *, now: datetime) -> ApiKey:
    """Revoke a key for good; revoking twice keeps the first time."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def describe(row: ApiKey) -> dict[str, object]:
    """Describe a key without its secret (for listings)."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "role": row.role.value,
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }
