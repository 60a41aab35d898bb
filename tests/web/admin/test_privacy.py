"""The admin rights queue over HTTP: open requests, the overdue marked."""

from __future__ import annotations

from datetime import date

from prefsvc.models import RightsKind
from prefsvc.privacy import register
from tests.factories import make_contact


def test_rights_queue_lists_open_requests_and_marks_the_overdue(as_role, session, settings, clock):
    person = make_contact(session, "ana@example.org")
    late = register.open_request(
        session, RightsKind.ERASURE, now=clock(), settings=settings, contact=person
    )
    late.due_on = date(2026, 3, 1)
    register.open_request(session, RightsKind.ACCESS, now=clock(), settings=settings)
    session.commit()
    page = as_role("privacy").get("/admin/rights").get_data(as_text=True)
    assert page.count('class="overdue"') == 1
    assert "ana@example.org" in page
    assert "2026-04-09" in page  # the other one: due 30 days after 10 March
