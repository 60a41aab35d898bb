"""Contact pages: search by part of a name or address, and one contact's whole record."""

from __future__ import annotations

from flask import abort, render_template, request

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.people import contacts
from prefsvc.settings import current_settings
from prefsvc.web.admin.blueprint import EVERYONE, bp, requires


@bp.get("/contacts/")
@requires(EVERYONE)
def contact_search():
    query = request.args.get("q", "").strip()
    found = contacts.search(db.session, query) if query else []
    return render_template(
        "admin/contacts.html", query=query, found=found, limit=contacts.SEARCH_LIMIT
    )


@bp.get("/contacts/<public_id>")
@requires(EVERYONE)
def contact(public_id: str):
    person = contacts.by_public_id(db.session, public_id)
    if person is None:
        abort(404)
    document = contacts.document(db.session, person, current_settings().marketing_window_years)
    return render_template("admin/contact.html", document=document, today=clock.today())
