"""Staff sign-in and sign-out, and the account as Flask-Login sees it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_user, logout_user

from prefsvc import clock
from prefsvc.access import staff
from prefsvc.extensions import db, login_manager
from prefsvc.models import AdminUser, StaffRole
from prefsvc.web.admin.blueprint import bp


@dataclass
class StaffUser(UserMixin):
    """The signed-in account as Flask-Login sees it.

    Its session id includes a fragment of the password hash and the account's session
    generation, checked at every request: signing out, changing the password or disabling
    the account moves the generation on, and every cookie issued before stops working, a
    copied one included.
    """

    id: int
    username: str
    role: StaffRole
    fingerprint: str
    generation: int

    def get_id(self) -> str:
        return f"{self.id}:{self.fingerprint}:{self.generation}"

    def may(self, allowed: tuple[StaffRole, ...]) -> bool:
        return staff.may(self.role, allowed)


def _as_staff_user(user: AdminUser) -> StaffUser:
    return StaffUser(
        user.id, user.username, user.role, user.password_hash[-12:], user.session_generation
    )


@login_manager.user_loader
def _load_user(session_id: str) -> StaffUser | None:
    user_id, fingerprint, generation = (session_id.split(":") + ["", ""])[:3]
    if not user_id.isdigit():
        return None
    user = db.session.get(AdminUser, int(user_id))
    if user is None or not user.active:
        return None
    if user.password_hash[-12:] != fingerprint or str(user.session_generation) != generation:
        return None
    return _as_staff_user(user)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.home"))
    error = None
    status = 200
    username = request.form.get("username", "")
    if request.method == "POST":
        try:
            user = staff.authenticate(
                db.session,
                username,
                request.form.get("password", ""),
                client=request.remote_addr or "",
                now=clock.now(),
            )
        except staff.SignInThrottled as exc:
            db.session.rollback()
            minutes = max(1, int(exc.retry_after.total_seconds() // 60) + 1)
            error = _(
                "Too many failed attempts. Try again in %(minutes)s minutes.", minutes=minutes
            )
            status = 429
        except staff.SignInRefused:
            db.session.commit()  # keep the audited failure: it feeds the brake
            time.sleep(0.5)  # slow down guessing a little more on top of scrypt
            error = _("Wrong username or password.")
            status = 401
        else:
            db.session.commit()
            next_page = _safe_next(request.args.get("next"))
            session.clear()
            login_user(_as_staff_user(user))
            return redirect(next_page)
    page = render_template("admin/login.html", error=error, username=username)
    return page, status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        staff.end_sessions(db.session, current_user.id)
        db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("admin.login"))
