"""The audit log, for admins: who did what through the API and the admin UI."""

from __future__ import annotations

from prefsvc.access import audit
from prefsvc.extensions import db
from prefsvc.web.api import auth, blueprint
from prefsvc.web.api import schemas as s

bp = blueprint("audit", "Who changed what, newest first (admin only).", "/audit")
blueprints = [bp]


@bp.route("", methods=["GET"])
@auth.requires(bp, "audit:read")
@bp.arguments(s.AuditQuery, location="query")
@bp.response(200, s.AuditPageOut)
def list_events(query):
    """List audit entries, newest first, optionally for one actor or action."""
    page = audit.recent(db.session, **query)
    return {
        "items": [audit.describe(e) for e in page.items],
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
    }
