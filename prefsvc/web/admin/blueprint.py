"""The admin blueprint and what every admin page shares: the role guard, headers and audit.

Every page needs a signed-in staff account whose role allows it (``staff.may``); every form
carries the global CSRF token; every answer is ``Cache-Control: no-store``. The area modules
(``auth``, ``dashboard``, ``campaigns``, ...) register their views on ``bp``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, g, render_template
from flask.blueprints import BlueprintSetupState
from flask_babel import format_decimal
from flask_login import current_user

from prefsvc import clock
from prefsvc.access import audit
from prefsvc.errors import PrefsvcError
from prefsvc.extensions import db, login_manager
from prefsvc.models import StaffRole
from prefsvc.settings import current_settings

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")

MARKETING = (StaffRole.MARKETING,)
PRIVACY = (StaffRole.PRIVACY,)
EVERYONE = (StaffRole.MARKETING, StaffRole.PRIVACY)


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    login_manager.init_app(state.app)
    login_manager.login_view = "admin.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"
    state.app.jinja_env.filters.setdefault("local_time", local_time)
    # a count as the page's language writes it: 9.940 (nl), 9 940 (fr), 9,940 (en)
    state.app.jinja_env.filters.setdefault("number", format_decimal)


def local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a stored UTC instant (or its ISO text, as documents hold it) in ``TIMEZONE``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value is None:
        return "–"
    if value.tzinfo is None:  # naive: UTC, as prefsvc stores every instant
        value = value.replace(tzinfo=UTC)
    return value.astimezone(current_settings().timezone).strftime(fmt)


def requires(allowed: tuple[StaffRole, ...]) -> Callable:
    """Let signed-in staff whose role is allowed (admins always) use the view; 403 otherwise."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.may(allowed):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


@bp.before_request
def _fresh_user() -> None:
    """Look the account and CSRF token up afresh (``g`` can outlive a request: tests, scripts)."""
    g.pop("_login_user", None)
    g.pop("csrf_token", None)


@bp.after_request
def _no_store(response: Response) -> Response:
    """Admin pages show personal data: keep them out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _navigation() -> dict[str, object]:
    return {
        "staff_may": lambda *roles: current_user.is_authenticated and current_user.may(roles),
        "time_zone": str(current_settings().timezone),
    }


def record(action: str, target: str | None, **detail: Any) -> None:
    """Audit an action of the signed-in user, in the transaction of the change."""
    audit.record(
        db.session,
        actor=f"user:{current_user.username}",
        action=action,
        target=target,
        detail=detail,
        now=clock.now(),
    )


@bp.errorhandler(PrefsvcError)
def _domain_error(error: PrefsvcError):
    """A domain error no view expected: a readable 400 page, nothing half-written kept."""
    db.session.rollback()
    log.info("admin request refused: %s", type(error).__name__)
    return render_template("error.html", code=400, title="Bad Request"), 400
