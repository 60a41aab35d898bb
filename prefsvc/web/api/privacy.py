"""Privacy routes: erasure, access export, legal hold, suppression check, request register."""

from __future__ import annotations

from prefsvc import clock
from prefsvc.consent import suppression
from prefsvc.extensions import db
from prefsvc.models import RightsRequest
from prefsvc.people import contacts
from prefsvc.privacy import access, erasure, register
from prefsvc.settings import current_settings
from prefsvc.web.api import auth, blueprint
from prefsvc.web.api import schemas as s
from prefsvc.web.api.contacts import contact_json, contacts_bp

bp = blueprint("privacy", "Data-subject rights and the suppression list.")
blueprints = [bp]
REQUEST = "/rights-requests/<int(min=1, max=2147483647):request_id>"


def _requests_json(rows: list[RightsRequest]) -> list[dict]:
    """Describe requests with their contact's public id (never the database id)."""
    public_ids = register.contact_public_ids(db.session, rows)
    return [{**register.request_summary(r), "contact": public_ids.get(r.contact_id)} for r in rows]


@contacts_bp.route("/<public_id>", methods=["DELETE"])
@auth.requires(contacts_bp, "contacts:erase")
@contacts_bp.response(200, s.ErasureOut)
@contacts_bp.alt_response(404, response="NOT_FOUND")
def erase(public_id: str):
    """Erase a person: personal data removed, address suppressed for good.

    Under an active legal hold the fields the law requires are kept; the answer says which.
    """
    contact = contacts.get_public(db.session, public_id)
    result = erasure.erase(db.session, contact, settings=current_settings(), now=clock.now())
    auth.record("contact.erase", f"contact:{result.public_id}", kept=result.kept)
    db.session.commit()
    return {
        "public_id": result.public_id,
        "kept": result.kept,
        "legal_hold": ({"reason": result.reason, "until": result.until} if result.kept else None),
    }


@contacts_bp.route("/<public_id>/export", methods=["GET"])
@auth.requires(contacts_bp, "contacts:export")
@contacts_bp.response(200, s.ExportOut)
@contacts_bp.alt_response(404, response="NOT_FOUND")
def export(public_id: str):
    """Everything held about the person (the access export); the export itself is logged."""
    contact = contacts.get_public(db.session, public_id)
    document = access.export(db.session, contact, settings=current_settings(), now=clock.now())
    auth.record("contact.export", f"contact:{contact.public_id}")
    db.session.commit()
    return document


@contacts_bp.route("/<public_id>/legal-hold", methods=["PUT"])
@auth.requires(contacts_bp, "legal-hold")
@contacts_bp.arguments(s.LegalHoldIn)
@contacts_bp.response(200, s.ContactOut)
@contacts_bp.alt_response(404, response="NOT_FOUND")
def set_legal_hold(body, public_id: str):
    """Set the source system's legal hold: erasure will keep what the law requires, until then."""
    contact = contacts.get_public(db.session, public_id)
    changed = erasure.set_legal_hold(
        db.session, contact, reason=body["reason"], until=body.get("until"), now=clock.now()
    )
    if changed:
        until = body.get("until")
        auth.record(
            "contact.legal_hold",
            f"contact:{contact.public_id}",
            until=until.isoformat() if until else None,
        )
    db.session.commit()
    return contact_json(contact)


@contacts_bp.route("/<public_id>/legal-hold", methods=["DELETE"])
@auth.requires(contacts_bp, "legal-hold")
@contacts_bp.response(200, s.ContactOut)
@contacts_bp.alt_response(404, response="NOT_FOUND")
def lift_legal_hold(public_id: str):
    """Lift the legal hold: a later erasure removes everything."""
    contact = contacts.get_public(db.session, public_id)
    if erasure.set_legal_hold(db.session, contact, reason=None, until=None, now=clock.now()):
        auth.record("contact.legal_hold_lifted", f"contact:{contact.public_id}")
    db.session.commit()
    return contact_json(contact)


@bp.route("/suppression/check", methods=["POST"])
@auth.requires(bp, "suppression:check")
@bp.arguments(s.SuppressionCheckIn)
@bp.response(200, s.SuppressionCheckOut)
def check_suppression(body):
    """Tell whether an address is on the do-not-mail list, and nothing more.

    A POST, so the address never appears in a URL or an access log.
    """
    key = current_settings().suppression_key
    return {"suppressed": suppression.is_suppressed(db.session, key, body["email"])}


@bp.route("/rights-requests", methods=["GET"])
@auth.requires(bp, "rights")
@bp.arguments(s.RightsQuery, location="query")
@bp.response(200, s.RightsPageOut)
def list_requests(query):
    """List the request register, the earliest due first; ``open=true`` for open ones only."""
    rows, total = register.requests(
        db.session,
        status=query.get("status"),
        open_only=query.get("open", False),
        page=query["page"],
        per_page=query["per_page"],
    )
    return {
        "items": _requests_json(rows),
        "total": total,
        "page": query["page"],
        "per_page": query["per_page"],
    }


@bp.route("/rights-requests", methods=["POST"])
@auth.requires(bp, "rights")
@bp.arguments(s.RightsRequestIn)
@bp.response(201, s.RightsRequestOut)
@bp.alt_response(404, response="NOT_FOUND")
def open_request(body):
    """Register a request (access, rectification, erasure) as received; due in RIGHTS_DUE_DAYS."""
    contact = contacts.get_public(db.session, body["contact"]) if body.get("contact") else None
    request = register.open_request(
        db.session,
        body["kind"],
        now=clock.now(),
        settings=current_settings(),
        contact=contact,
        note=body.get("note"),
    )
    auth.record("rights.open", f"rights-request:{request.id}", kind=request.kind.value)
    db.session.commit()
    return _requests_json([request])[0]


@bp.route("/rights-requests/overdue", methods=["GET"])
@auth.requires(bp, "rights")
@bp.response(200, s.RightsRequestOut(many=True))
def overdue():
    """Open requests past their due date, the longest overdue first."""
    return _requests_json(register.overdue(db.session, clock.today()))


@bp.route(REQUEST, methods=["GET"])
@auth.requires(bp, "rights")
@bp.response(200, s.RightsRequestOut)
@bp.alt_response(404, response="NOT_FOUND")
def get_request(request_id: int):
    """Show one request of the register."""
    return _requests_json([register.get_request(db.session, request_id)])[0]
