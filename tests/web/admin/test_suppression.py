"""The admin suppression page over HTTP: counts, and a yes or no for one address."""

from __future__ import annotations

import re

from prefsvc.consent import suppression
from prefsvc.models import SuppressionReason
from tests.web.admin.conftest import post


def test_suppression_page_counts_hashes_and_answers_only_yes_or_no(as_role, session, settings):
    suppression.add(
        session, settings.suppression_key, "gone@example.org", SuppressionReason.ERASURE
    )
    suppression.add(
        session, settings.suppression_key, "no@example.org", SuppressionReason.OBJECTION
    )
    session.commit()
    client = as_role("marketing")
    page = client.get("/admin/suppression").get_data(as_text=True)
    assert "gone@example.org" not in page
    assert re.search(r"<th scope=\"row\">erasure</th><td class=\"num\">1</td>", page)
    yes = post(
        client, "/admin/suppression", {"email": "Gone@Example.org"}, form_page="/admin/suppression"
    )
    assert "Yes: this address is on the suppression list." in yes.get_data(as_text=True)
    no = post(
        client, "/admin/suppression", {"email": "new@example.org"}, form_page="/admin/suppression"
    )
    assert "No: this address is not on the suppression list." in no.get_data(as_text=True)
    bad = post(client, "/admin/suppression", {"email": "nope"}, form_page="/admin/suppression")
    assert bad.status_code == 422
