"""Sign-in pages (``/p``): a fresh link by mail, for anyone who has no old newsletter at hand.

The answer is the same for any address, known or not.
"""

from __future__ import annotations

from flask import render_template, request, url_for

from prefsvc.errors import InvalidInput
from prefsvc.extensions import db
from prefsvc.recipient import signin
from prefsvc.web.recipient.blueprint import bp, notices_committed, notify
from prefsvc.web.recipient.rate_limits import (
    per_address_on_signin,
    per_client_on_links,
    per_client_on_signin,
)


@bp.get("/p")
@per_client_on_links
def signin_page() -> str:
    """Ask for an address; change nothing."""
    return render_template("recipient/signin.html", state="ask", lang_base=url_for(".signin_page"))


@bp.post("/p")
@per_client_on_signin
@per_address_on_signin
def request_signin() -> tuple[str, int] | str:
    """Queue a sign-in link; answer the same way for any address, known or not."""
    address = request.form.get("email", "")
    try:
        contact_id = signin.recipient_id(db.session, address)
    except InvalidInput:
        page = render_template(
            "recipient/signin.html",
            state="invalid",
            email=address,
            lang_base=url_for(".signin_page"),
        )
        return page, 400
    db.session.rollback()
    notify(signin.KIND, contact_id, {})
    db.session.commit()
    notices_committed()
    return render_template("recipient/signin.html", state="sent", lang_base=url_for(".signin_page"))
