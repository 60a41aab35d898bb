"""The admin sign-in over HTTP: where it leads, what it refuses, its cookie and CSRF."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from prefsvc.access import staff
from prefsvc.models import AuditEvent, CampaignStatus
from tests.factories import make_campaign
from tests.web.admin.conftest import PASSWORD, post, sign_in

PAGES = [
    "/admin/",
    "/admin/campaigns/",
    "/admin/campaigns/new",
    "/admin/contacts/",
    "/admin/import",
    "/admin/suppression",
    "/admin/rights",
]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_sends_a_stranger_to_the_sign_in_page(client, page):
    response = client.get(page)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")


def test_signing_in_opens_the_page_asked_for(client, accounts):
    response = sign_in(client, "marketing", query_string={"next": "/admin/contacts/"})
    assert response.headers["Location"] == "/admin/contacts/"
    assert client.get("/admin/contacts/").status_code == 200


def test_sign_in_never_redirects_off_the_admin_ui(client, accounts):
    response = sign_in(client, "marketing", query_string={"next": "https://evil.example/"})
    assert response.headers["Location"] == "/admin/"


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(client, accounts):
    wrong_password = sign_in(client, "marketing", "nope")
    unknown_user = sign_in(client, "nobody", PASSWORD)
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert "Wrong username or password" in wrong_password.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_sign_in_is_refused_for_a_while_after_five_failures(client, accounts, clock):
    for _ in range(staff.MAX_FAILURES):
        assert sign_in(client, "marketing", "guess").status_code == 401
    blocked = sign_in(client, "marketing", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.get_data(as_text=True)
    clock.advance(minutes=16)
    assert sign_in(client, "marketing", PASSWORD).status_code == 302


def test_a_disabled_account_is_signed_out_at_its_next_request(client, accounts, session):
    sign_in(client, "marketing")
    assert client.get("/admin/").status_code == 200
    staff.disable(session, "marketing")
    session.commit()
    assert client.get("/admin/").status_code == 302
    assert sign_in(client, "marketing").status_code == 401


def test_sign_in_and_out_are_audited(as_role, session):
    client = as_role("privacy")
    post(client, "/admin/logout")
    actions = session.scalars(select(AuditEvent.action)).all()
    assert "admin.login" in actions
    assert client.get("/admin/").status_code == 302


def test_session_cookie_is_http_only_and_same_site_lax(client, accounts):
    response = sign_in(client, "admin")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_a_form_posted_without_csrf_token_is_refused(client, accounts):
    token_less = client.post("/admin/login", data={"username": "admin", "password": PASSWORD})
    assert token_less.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_signed_in_staff_still_need_the_csrf_token_to_send(as_role, session, topic):
    campaign = make_campaign(session, topic)
    session.commit()
    client = as_role("marketing")
    response = client.post(f"/admin/campaigns/{campaign.id}/send")
    assert response.status_code == 400
    session.refresh(campaign)
    assert campaign.status is CampaignStatus.DRAFT


def test_a_stranger_cannot_lock_a_user_out_over_http(app, accounts):
    stranger = app.test_client()
    stranger.environ_base.update(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="203.0.113.9")
    for _ in range(staff.MAX_FAILURES):
        assert sign_in(stranger, "marketing", "guess").status_code == 401
    assert sign_in(stranger, "marketing", PASSWORD).status_code == 429
    colleague = app.test_client()
    colleague.environ_base.update(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="198.51.100.7")
    assert sign_in(colleague, "marketing", PASSWORD).status_code == 302


def _copy_cookies(source, target) -> None:
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def test_a_cookie_copied_before_sign_out_stops_working_after_it(app, as_role):
    client = as_role("marketing")
    thief = app.test_client()
    _copy_cookies(client, thief)
    assert thief.get("/admin/").status_code == 200
    post(client, "/admin/logout")
    response = thief.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


def test_changing_the_password_ends_every_open_session(app, as_role, session):
    client = as_role("privacy")
    assert client.get("/admin/").status_code == 200
    staff.change_password(session, "privacy", "a brand new password")
    session.commit()
    assert client.get("/admin/").status_code == 302
