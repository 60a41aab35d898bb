"""The privacy team's queue of open rights requests (access, rectification, erasure)."""

from __future__ import annotations

from flask import render_template

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.privacy import register
from prefsvc.web.admin.blueprint import PRIVACY, bp, requires


@bp.get("/rights")
@requires(PRIVACY)
def rights_queue():
    requests_ = register.open_requests(db.session)
    return render_template("admin/rights.html", requests=requests_, today=clock.today())
