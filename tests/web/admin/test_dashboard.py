"""The admin dashboard over HTTP: the figures both teams watch."""

from __future__ import annotations

import re
from datetime import date, timedelta

from prefsvc.models import RightsKind
from prefsvc.privacy import register
from tests.factories import make_contact


def test_dashboard_counts_contacts_expiring_windows_and_overdue_requests(
    as_role, session, topic, clock, settings
):
    today = date(2026, 3, 10)
    make_contact(session, "a@example.org", topics=[topic], anchor=today)
    make_contact(session, "b@example.org", language="fr", topics=[topic], anchor=today)
    soon = make_contact(
        session, "soon@example.org", anchor=today.replace(year=2021) + timedelta(20)
    )
    request = register.open_request(session, RightsKind.ACCESS, now=clock(), settings=settings)
    request.due_on = today - timedelta(days=2)
    session.commit()
    page = as_role("marketing").get("/admin/").get_data(as_text=True)
    assert "soon@example.org" in page
    assert soon.email in page
    assert re.search(r"Overdue rights requests</h2>\s*<p class=\"big\">1</p>", page)
    assert re.search(r"Windows ending in the next 60 days</h2>\s*<p class=\"big\">1</p>", page)
    assert re.search(r"Contacts we may mail</h2>\s*<p class=\"big\">3</p>", page)
