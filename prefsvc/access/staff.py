"""Staff accounts of the admin UI: salted scrypt hashes, roles, sign-in with a failure brake.

Failed sign-ins are audit events, so the brake holds across every web process and survives a
restart: after ``MAX_FAILURES`` failures for one username within ``FAILURE_WINDOW`` further
attempts are refused without even checking the password, until the window has passed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from prefsvc.access import audit
from prefsvc.errors import InvalidInput, NotFound, PrefsvcError
from prefsvc.models import AdminUser, AuditEvent, StaffRole

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 4  # the demo's "demo"; staff choose longer ones, the CLI warns below 12
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOGIN_FAILED = "admin.login_failed"
LOGIN = "admin.login"
# Compared against when the username does not exist, so both cases take the same time.
_DUMMY_HASH = generate_password_hash("not-a-password", method="scrypt")


class SignInRefused(PrefsvcError):
    """Wrong username or password, or a disabled account; callers never say which."""


class SignInThrottled(PrefsvcError):
    """Too many failed sign-ins for this username lately; try again after ``retry_after``."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("too many failed sign-ins; try again later")
        self.retry_after = retry_after


@dataclass(frozen=True)
class StaffSummary:
    username: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None


def _username(value: str) -> str:
    name = (value or "").strip().lower()
    if not USERNAME.match(name):
        raise InvalidInput("username", "use 2-64 lower-case letters, digits, '.', '_' or '-'")
    return name


def _sign_in_target(name: str) -> str:
    """Name what a failed sign-in was for: the username, or a digest of whatever was typed.

    People type their email address as a username; the audit log outlives erasure and holds
    no addresses, so anything that cannot be a username is kept only as a digest.
    """
    if USERNAME.match(name):
        return f"user:{name}"
    return "login:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


def _role(value: StaffRole | str) -> StaffRole:
    try:
        return StaffRole(value)
    except ValueError:
        raise InvalidInput("role", "must be marketing, privacy or admin") from None


def create(
    session: Session, username: str, password: str, role: StaffRole | str, *, now: datetime
) -> AdminUser:
    """Create an active staff account; the password is stored only as a salted scrypt hash."""
    name = _username(username)
    staff_role = _role(role)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(AdminUser.id).where(AdminUser.username == name)) is not None:
        raise InvalidInput("username", f"{name!r} exists already")
    user = AdminUser(
        username=name,
        password_hash=generate_password_hash(password, method="scrypt"),
        role=staff_role,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def get(session: Session, username: str) -> AdminUser:
    user = session.scalar(select(AdminUser).where(AdminUser.username == _username(username)))
    if user is None:
        raise NotFound(f"no staff account {username!r}")
    return user


def listing(session: Session) -> list[StaffSummary]:
    """Return every account, active or not, by username (never the hashes)."""
    return [
        StaffSummary(u.username, u.role.value, u.active, u.created_at, u.last_login_at)
        for u in session.scalars(select(AdminUser).order_by(AdminUser.username))
    ]


def disable(session: Session, username: str) -> AdminUser:
    """Disable an account: its open sessions end at their next request, sign-in is refused."""
    user = get(session, username)
    user.active = False
    return user


def authenticate(session: Session, username: str, password: str, *, now: datetime) -> AdminUser:
    """Return the active account for these credentials, or raise; every failure is audited."""
    name = (username or "").strip().lower()[:200]
    since = now - FAILURE_WINDOW
    failures = session.execute(
        select(func.count(), func.min(AuditEvent.occurred_at)).where(
            AuditEvent.action == LOGIN_FAILED,
            AuditEvent.target == _sign_in_target(name),
            AuditEvent.occurred_at > since,
        )
    ).one()
    if failures[0] >= MAX_FAILURES:
        raise SignInThrottled(failures[1] + FAILURE_WINDOW - now)
    user = session.scalar(select(AdminUser).where(AdminUser.username == name))
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is None or not valid or not user.active:
        audit.record(
            session, actor="anonymous", action=LOGIN_FAILED, target=_sign_in_target(name), now=now
        )
        raise SignInRefused("wrong username or password")
    user.last_login_at = now
    actor = f"user:{user.username}"
    audit.record(session, actor=actor, action=LOGIN, target=actor, now=now)
    return user


def may(role: StaffRole, allowed: tuple[StaffRole, ...]) -> bool:
    """Tell whether a role may use a page; admins may use every page."""
    return role is StaffRole.ADMIN or role in allowed
