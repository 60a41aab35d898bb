"""Staff accounts of the admin UI: salted scrypt hashes, roles, sign-in with a failure brake.

The brake counts in the database (``sign_in_brakes``), so it holds across every web process
and survives a restart. Every attempt is counted before its password is checked, by one
conditional UPDATE per key: parallel attempts queue on the row and cannot all pass. Two keys:
a user name from one client (``MAX_FAILURES`` per ``FAILURE_WINDOW``), so a stranger who
guesses locks out only himself and the user still signs in from elsewhere; and a client over
every user name (``MAX_CLIENT_FAILURES``), so one client cannot spray guesses across accounts.
A correct password gives back the attempt it was counted as and clears that client's
failures for the user. The window of a key starts at its first failure; once it has passed,
counting starts again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from prefsvc.access import audit
from prefsvc.errors import InvalidInput, NotFound, PrefsvcError
from prefsvc.models import AdminUser, SignInBrake, StaffRole

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 4  # the demo's "demo"; staff choose longer ones, the CLI warns below 12
MAX_FAILURES = 5  # per user name from one client
MAX_CLIENT_FAILURES = 20  # per client, whatever the user names
FAILURE_WINDOW = timedelta(minutes=15)
LOGIN_FAILED = "admin.login_failed"
LOGIN = "admin.login"
# Compared against when the username does not exist, so both cases take the same time.
_DUMMY_HASH = generate_password_hash("not-a-password", method="scrypt")


class SignInRefused(PrefsvcError):
    """Wrong username or password, or a disabled account; callers never say which."""


class SignInThrottled(PrefsvcError):
    """Too many failed sign-ins from this client lately; try again after ``retry_after``."""

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
    session.flush()
    end_sessions(session, user.id)
    return user


def authenticate(
    session: Session, username: str, password: str, *, client: str = "", now: datetime
) -> AdminUser:
    """Return the active account for these credentials, or raise; every failure is audited.

    ``client`` is the caller's address (the CLI and tests may leave it empty). On
    ``SignInThrottled`` the caller rolls back; on ``SignInRefused`` it commits, which keeps
    the counted failure.
    """
    name = (username or "").strip().lower()[:200]
    target = _sign_in_target(name)
    pair, everyone = _brake_key("pair", target, client), _brake_key("client", client)
    session.execute(
        delete(SignInBrake).where(SignInBrake.window_started_at <= now - 2 * FAILURE_WINDOW)
    )
    wait = _count_attempt(session, pair, MAX_FAILURES, now)
    if wait is not None:
        raise SignInThrottled(wait)
    wait = _count_attempt(session, everyone, MAX_CLIENT_FAILURES, now)
    if wait is not None:
        _give_back(session, pair)
        raise SignInThrottled(wait)
    user = session.scalar(select(AdminUser).where(AdminUser.username == name))
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is None or not valid or not user.active:
        audit.record(session, actor="anonymous", action=LOGIN_FAILED, target=target, now=now)
        raise SignInRefused("wrong username or password")
    session.execute(delete(SignInBrake).where(SignInBrake.key == pair))
    _give_back(session, everyone)
    user.last_login_at = now
    actor = f"user:{user.username}"
    audit.record(session, actor=actor, action=LOGIN, target=actor, now=now)
    return user


def _brake_key(*parts: str) -> str:
    """Name a brake by a digest, so the table keeps neither addresses nor typed names."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _count_attempt(session: Session, key: str, limit: int, now: datetime) -> timedelta | None:
    """Count one attempt under ``key`` unless ``limit`` is reached; else return the wait.

    The row is created if missing, then one conditional UPDATE counts: it locks the row
    until the caller's transaction ends, so concurrent attempts are counted one by one.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(SignInBrake)
        .values(key=key, window_started_at=now, failures=0)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    stale = SignInBrake.window_started_at <= now - FAILURE_WINDOW
    counted = session.execute(
        update(SignInBrake)
        .where(SignInBrake.key == key, or_(stale, SignInBrake.failures < limit))
        .values(
            failures=case((stale, 1), else_=SignInBrake.failures + 1),
            window_started_at=case((stale, now), else_=SignInBrake.window_started_at),
        )
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount == 1:
        return None
    started = session.scalar(select(SignInBrake.window_started_at).where(SignInBrake.key == key))
    return started + FAILURE_WINDOW - now


def _give_back(session: Session, key: str) -> None:
    """Uncount an attempt that turned out not to be a failure."""
    session.execute(
        update(SignInBrake)
        .where(SignInBrake.key == key, SignInBrake.failures > 0)
        .values(failures=SignInBrake.failures - 1)
        .execution_options(synchronize_session=False)
    )


def end_sessions(session: Session, user_id: int) -> None:
    """End every session of an account: each signed cookie fails at its next request.

    Session ids carry the account's ``session_generation``; moving it on is one atomic
    UPDATE, so a cookie copied before sign-out cannot be used after it.
    """
    session.execute(
        update(AdminUser)
        .where(AdminUser.id == user_id)
        .values(session_generation=AdminUser.session_generation + 1)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


def change_password(session: Session, username: str, password: str) -> AdminUser:
    """Set a new password and end every session signed in with the old one."""
    user = get(session, username)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"needs at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = generate_password_hash(password, method="scrypt")
    session.flush()
    end_sessions(session, user.id)
    return user


def may(role: StaffRole, allowed: tuple[StaffRole, ...]) -> bool:
    """Tell whether a role may use a page; admins may use every page."""
    return role is StaffRole.ADMIN or role in allowed
