"""The suppression page: counts by reason, never the list itself."""

from __future__ import annotations

from flask import render_template, request

from prefsvc.consent import suppression
from prefsvc.errors import InvalidInput
from prefsvc.extensions import db
from prefsvc.settings import current_settings
from prefsvc.web.admin.blueprint import EVERYONE, bp, requires


@bp.route("/suppression", methods=["GET", "POST"])
@requires(EVERYONE)
def suppression_list():
    """Counts by reason, and a check that answers only yes or no for one address."""
    answer = None
    error = None
    if request.method == "POST":
        try:
            answer = suppression.is_suppressed(
                db.session, current_settings().suppression_key, request.form.get("email", "")
            )
        except InvalidInput as exc:
            error = exc.reason
    counts = suppression.counts_by_reason(db.session)
    db.session.rollback()
    status = 422 if error else 200
    page = render_template("admin/suppression.html", counts=counts, answer=answer, error=error)
    return page, status
