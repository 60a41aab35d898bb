"""The webhooks pages (admins): register endpoints, see each delivery log, replay, rotate.

A secret is shown once, in the answer to the form that made it (never kept in a flash
message: that would put it in the session cookie). Every admin page shows a banner while an
endpoint is disabled for failing (``alerts.disabled_for_failing``).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from prefsvc import clock
from prefsvc.errors import InvalidInput, NotFound
from prefsvc.extensions import db
from prefsvc.web.admin.blueprint import bp, record, requires
from prefsvc.webhooks import alerts, delivery, endpoints, events

ADMINS: tuple = ()  # ``requires`` lets admins through whatever the tuple says


@bp.context_processor
def _failing_webhooks() -> dict[str, object]:
    """The banner's endpoints: only admins, who can act on them, are shown it."""
    if not (current_user.is_authenticated and current_user.may(ADMINS)):
        return {"failing_webhooks": []}
    return {"failing_webhooks": [e.id for e in alerts.disabled_for_failing(db.session)]}


def _page(status: int = 200, *, secret=None, error=None, values=None):
    page = render_template(
        "admin/webhooks.html",
        endpoints=endpoints.listing(db.session),
        events=events.ALL,
        secret=secret,
        error=error,
        values=values or {"events": list(events.ALL)},
    )
    db.session.rollback()
    return page, status


@bp.get("/webhooks")
@requires(ADMINS)
def webhook_list():
    return _page()


@bp.post("/webhooks")
@requires(ADMINS)
def webhook_create():
    values = {
        "url": request.form.get("url", ""),
        "description": request.form.get("description", ""),
        "events": request.form.getlist("events"),
    }
    try:
        endpoint = endpoints.create(
            db.session,
            values["url"],
            values["events"],
            now=clock.now(),
            description=values["description"],
        )
    except InvalidInput as exc:
        db.session.rollback()
        return _page(422, error=exc, values=values)
    record("webhook.create", f"webhook:{endpoint.id}")
    secret = endpoint.secret
    db.session.commit()
    return _page(201, secret=(endpoint.id, secret))


def _endpoint(endpoint_id: int):
    try:
        return endpoints.get(db.session, endpoint_id)
    except NotFound:
        abort(404)


@bp.post("/webhooks/<int:endpoint_id>/<any(disable, enable, rotate, replay):action>")
@requires(ADMINS)
def webhook_action(endpoint_id: int, action: str):
    endpoint = _endpoint(endpoint_id)
    now = clock.now()
    if action == "rotate":
        secret = endpoints.rotate_secret(db.session, endpoint, now=now)
        record("webhook.rotate", f"webhook:{endpoint_id}")
        db.session.commit()
        return _page(secret=(endpoint_id, secret))
    if action == "disable":
        endpoints.disable(db.session, endpoint, now=now)
        flash(_("Endpoint %(id)s disabled: its events wait.", id=endpoint_id), "ok")
    elif action == "enable":
        endpoints.enable(db.session, endpoint, now=now)
        flash(_("Endpoint %(id)s enabled: waiting events go first.", id=endpoint_id), "ok")
    else:
        one = request.form.get("delivery", type=int)
        count = delivery.replay(db.session, now=now, endpoint_id=endpoint_id, delivery_id=one)
        flash(_("%(count)s deliveries will be sent again.", count=count), "ok")
    record(f"webhook.{action}", f"webhook:{endpoint_id}")
    db.session.commit()
    if action == "replay":
        return redirect(url_for("admin.webhook_log", endpoint_id=endpoint_id))
    return redirect(url_for("admin.webhook_list"))


@bp.get("/webhooks/<int:endpoint_id>")
@requires(ADMINS)
def webhook_log(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    page = render_template(
        "admin/webhook_log.html",
        endpoint=endpoint,
        deliveries=delivery.log_of(db.session, endpoint_id),
    )
    db.session.rollback()
    return page
