"""Webhook endpoints (admins) and the changes feed (pull sync for systems that cannot receive)."""

from __future__ import annotations

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.web.api import auth, blueprint
from prefsvc.web.api import schemas as s
from prefsvc.webhooks import delivery, endpoints, feed

bp = blueprint("webhooks", "Signed event webhooks to other systems (admin only).", "/webhooks")
changes_bp = blueprint("changes", "Consent and contact changes in order, for polling.", "/changes")
blueprints = [bp, changes_bp]
ENDPOINT = "/<int(min=1, max=2147483647):endpoint_id>"


@bp.route("", methods=["GET"])
@auth.requires(bp, "webhooks")
@bp.response(200, s.WebhookListOut)
def list_endpoints():
    """List the endpoints (never their secrets)."""
    return {"items": [endpoints.summary(e) for e in endpoints.listing(db.session)]}


@bp.route("", methods=["POST"])
@auth.requires(bp, "webhooks")
@bp.arguments(s.WebhookIn)
@bp.response(201, s.WebhookSecretOut)
def create_endpoint(body):
    """Register an endpoint; the answer holds its signing secret, shown this once."""
    endpoint = endpoints.create(
        db.session,
        body["url"],
        body["events"],
        now=clock.now(),
        description=body.get("description"),
    )
    db.session.commit()
    return endpoints.summary(endpoint) | {"secret": endpoint.secret}


@bp.route(f"{ENDPOINT}/disable", methods=["POST"])
@auth.requires(bp, "webhooks")
@bp.response(200, s.WebhookOut)
def disable_endpoint(endpoint_id):
    """Stop delivering; the endpoint's events wait until it is enabled."""
    endpoint = endpoints.get(db.session, endpoint_id)
    endpoints.disable(db.session, endpoint, now=clock.now())
    db.session.commit()
    return endpoints.summary(endpoint)


@bp.route(f"{ENDPOINT}/enable", methods=["POST"])
@auth.requires(bp, "webhooks")
@bp.response(200, s.WebhookOut)
def enable_endpoint(endpoint_id):
    """Deliver again, starting with the events that waited."""
    endpoint = endpoints.get(db.session, endpoint_id)
    endpoints.enable(db.session, endpoint, now=clock.now())
    db.session.commit()
    return endpoints.summary(endpoint)


@bp.route(f"{ENDPOINT}/rotate-secret", methods=["POST"])
@auth.requires(bp, "webhooks")
@bp.response(200, s.WebhookSecretOut)
def rotate_endpoint_secret(endpoint_id):
    """Give the endpoint a new secret; the previous one also signs for 24 hours."""
    endpoint = endpoints.get(db.session, endpoint_id)
    secret = endpoints.rotate_secret(db.session, endpoint, now=clock.now())
    db.session.commit()
    return endpoints.summary(endpoint) | {"secret": secret}


@bp.route(f"{ENDPOINT}/replay", methods=["POST"])
@auth.requires(bp, "webhooks")
@bp.arguments(s.ReplayIn)
@bp.response(200, s.ReplayOut)
def replay_endpoint(body, endpoint_id):
    """Send deliveries again with their message ids: one, those since a moment, or all."""
    endpoints.get(db.session, endpoint_id)
    count = delivery.replay(
        db.session,
        now=clock.now(),
        endpoint_id=endpoint_id,
        delivery_id=body.get("delivery_id"),
        since=body.get("since"),
    )
    db.session.commit()
    return {"replayed": count}


@bp.route(f"{ENDPOINT}/deliveries", methods=["GET"])
@auth.requires(bp, "webhooks")
@bp.response(200, s.WebhookDeliveriesOut)
def list_deliveries(endpoint_id):
    """The delivery log: the latest 50 deliveries, each with its last answer."""
    endpoints.get(db.session, endpoint_id)
    return {"items": [delivery.entry(d) for d in delivery.log_of(db.session, endpoint_id)]}


@changes_bp.route("", methods=["GET"])
@auth.requires(changes_bp, "changes:read")
@changes_bp.arguments(s.ChangesQuery, location="query")
@changes_bp.response(200, s.ChangesOut)
def list_changes(query):
    """Changes after a cursor, oldest first; ask again with ``next_cursor`` to go on.

    Items have the webhook payload shape plus their own ``cursor``.
    """
    page = feed.changes(db.session, after=query.get("after"), limit=query["limit"])
    return {"items": page.items, "next_cursor": page.next_cursor, "more": page.more}
