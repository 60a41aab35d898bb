"""``/c/<token>``: a campaign link's counting redirect (``mail.clicks``), for campaigns that ask.

The token names the campaign and the link's number, never the person; the click is counted on
GET only (a HEAD just answers where it leads) and nothing about the request is stored. Only a
URL stored for that campaign is ever redirected to; every bad token gets the same 404.
"""

from __future__ import annotations

from flask import abort, redirect, request

from prefsvc.errors import InvalidToken
from prefsvc.extensions import db
from prefsvc.mail import clicks
from prefsvc.models import LinkClick
from prefsvc.settings import current_settings
from prefsvc.web.recipient.blueprint import bp


@bp.get("/c/<token>")
def follow_link(token: str):
    """Count the click and redirect; a HEAD (a link checker) only learns where it leads."""
    keys = current_settings().secret_keys
    try:
        if request.method == "HEAD":
            url = _stored_url(*clicks.read_token(keys, token))
        else:
            url = clicks.follow(db.session, keys, token)
    except InvalidToken:
        db.session.rollback()
        abort(404)
    db.session.commit()
    return _to(url)


def _stored_url(campaign_id: int, link: int) -> str:
    row = db.session.get(LinkClick, (campaign_id, link))
    if row is None:
        raise InvalidToken()
    return row.url


def _to(url: str):
    response = redirect(url, code=302)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
