"""The admin guard over HTTP: each page opens for its roles only, never cached."""

from __future__ import annotations

import pytest

from prefsvc.models import CampaignStatus, StaffRole
from tests.factories import make_campaign
from tests.web.admin.conftest import post

ROLE_PAGES = {
    "/admin/": {"marketing", "privacy", "admin"},
    "/admin/campaigns/": {"marketing", "admin"},
    "/admin/campaigns/new": {"marketing", "admin"},
    "/admin/contacts/": {"marketing", "privacy", "admin"},
    "/admin/import": {"marketing", "admin"},
    "/admin/suppression": {"marketing", "privacy", "admin"},
    "/admin/rights": {"privacy", "admin"},
}


@pytest.mark.parametrize("role", [r.value for r in StaffRole])
@pytest.mark.parametrize("page", list(ROLE_PAGES))
def test_each_page_opens_for_its_roles_and_is_forbidden_to_the_others(as_role, role, page):
    client = as_role(role)
    response = client.get(page)
    assert response.status_code == (200 if role in ROLE_PAGES[page] else 403)
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_privacy_staff_cannot_send_a_campaign(as_role, session, topic):
    campaign = make_campaign(session, topic)
    session.commit()
    client = as_role("privacy")
    response = post(client, f"/admin/campaigns/{campaign.id}/send")
    assert response.status_code == 403
    session.refresh(campaign)
    assert campaign.status is CampaignStatus.DRAFT


def test_navigation_shows_only_the_pages_the_role_may_open(as_role):
    page = as_role("privacy").get("/admin/").get_data(as_text=True)
    assert "/admin/rights" in page
    assert "/admin/import" not in page
