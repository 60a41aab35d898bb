"""The admin UI over HTTP: sign-in, roles per page, CSRF, and each page doing its job."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from prefsvc.access import staff
from prefsvc.consent import changes as consent
from prefsvc.consent import suppression
from prefsvc.models import (
    AuditEvent,
    Campaign,
    CampaignStatus,
    RightsKind,
    StaffRole,
    SuppressionReason,
)
from prefsvc.privacy import register
from tests.factories import make_campaign, make_contact, make_topic

PASSWORD = "correct horse battery"


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, username: str, password: str = PASSWORD, **extra):
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    return client.post(
        "/admin/login",
        data={"csrf_token": token, "username": username, "password": password},
        **extra,
    )


def post(client, url: str, data: dict | None = None, *, form_page: str | None = None, **extra):
    """POST a form the way a browser does: with the CSRF token of a page just loaded."""
    token = csrf_token(client.get(form_page or "/admin/").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **(data or {})}, **extra)


@pytest.fixture
def client(app):
    """A browser that asks for English pages (the assertions below quote the English text)."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def accounts(session, clock):
    for role in StaffRole:
        staff.create(session, role.value, PASSWORD, role, now=clock())
    session.commit()


@pytest.fixture
def as_role(client, accounts):
    def sign(role: str):
        response = sign_in(client, role)
        assert response.status_code == 302
        return client

    return sign


@pytest.fixture
def topic(session):
    topic = make_topic(session, "nieuwe-opleidingen", "Nieuwe opleidingen")
    session.commit()
    return topic


# --- sign-in ------------------------------------------------------------------------------

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


# --- roles --------------------------------------------------------------------------------

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


# --- dashboard ----------------------------------------------------------------------------


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


# --- composer -----------------------------------------------------------------------------

HTML_NL = "<p style='color:#333'>Beste {{ contact.first_name }}, nieuwe opleidingen!</p>"
HTML_FR = (
    "<html><head><style>p { color: #123456; }</style></head><body><p>Bonjour</p></body></html>"
)


def compose_form(topic_slug: str, **overrides) -> dict:
    form = {
        "topic": topic_slug,
        "subject_nl": "Nieuw aanbod",
        "html_nl": HTML_NL,
        "text_nl": "",
        "subject_fr": "Nouvelle offre",
        "html_fr": HTML_FR,
        "text_fr": "",
        "subject_en": "",
        "html_en": "",
        "text_en": "",
    }
    form.update(overrides)
    return form


def test_composing_a_campaign_in_two_languages_saves_a_draft_and_shows_its_preview(
    as_role, session, topic
):
    make_contact(session, topics=[topic])
    session.commit()
    client = as_role("marketing")
    response = post(
        client, "/admin/campaigns/new", compose_form(topic.slug), form_page="/admin/campaigns/new"
    )
    assert response.status_code == 302
    campaign = session.scalars(select(Campaign)).one()
    assert sorted(v.language.value for v in campaign.variants) == ["fr", "nl"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f'src="/admin/campaigns/{campaign.id}/preview/nl"' in page
    assert "sandbox" in page
    assert "Send now to 1 recipients" in page


def test_composer_shows_each_problem_next_to_its_language_field(as_role, session, topic):
    client = as_role("marketing")
    form = compose_form(topic.slug, subject_fr="", html_nl="<p>{{ contact.first_name </p>")
    response = post(client, "/admin/campaigns/new", form, form_page="/admin/campaigns/new")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="error-subject-fr"' in page
    assert 'id="error-html-nl"' in page
    assert 'aria-describedby="error-subject-fr"' in page
    assert "Nieuw aanbod" in page  # what was typed is kept
    assert session.scalars(select(Campaign)).all() == []


def test_composer_asks_for_a_topic(as_role, session, topic):
    client = as_role("marketing")
    response = post(
        client, "/admin/campaigns/new", compose_form(""), form_page="/admin/campaigns/new"
    )
    assert response.status_code == 422
    assert 'id="error-topic-all"' in response.get_data(as_text=True)


def test_a_draft_can_be_revised(as_role, session, topic):
    campaign = make_campaign(session, topic)
    session.commit()
    client = as_role("marketing")
    page = f"/admin/campaigns/{campaign.id}"
    response = post(client, page, compose_form(topic.slug, subject_nl="Beter"), form_page=page)
    assert response.status_code == 302
    session.expire_all()
    assert {v.language.value: v.subject for v in campaign.variants}["nl"] == "Beter"


def test_preview_is_served_with_a_strict_policy_of_its_own(as_role, session, topic):
    html = "<p>Hallo</p><script>alert(1)</script>"
    campaign = make_campaign(session, topic, html=html.replace("<script>alert(1)</script>", ""))
    session.commit()
    response = as_role("marketing").get(f"/admin/campaigns/{campaign.id}/preview/nl")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "frame-ancestors 'self'" in policy
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Hallo" in response.get_data(as_text=True)


def test_preview_of_a_language_the_campaign_lacks_is_404(as_role, session, topic):
    campaign = make_campaign(session, topic)
    session.commit()
    assert as_role("marketing").get(f"/admin/campaigns/{campaign.id}/preview/fr").status_code == 404


def test_test_send_delivers_one_marked_copy_and_counts_nothing(as_role, session, topic, outbox):
    campaign = make_campaign(session, topic)
    session.commit()
    client = as_role("marketing")
    page = f"/admin/campaigns/{campaign.id}"
    response = post(
        client, f"{page}/test-send", {"to": "me@example.org", "language": "nl"}, form_page=page
    )
    assert response.status_code == 302
    (message,) = outbox()
    assert message["Subject"].startswith("[TEST]")
    assert message["To"] == "me@example.org"
    assert "Test copy sent." in client.get(page).get_data(as_text=True)


def test_test_send_to_a_bad_address_says_so(as_role, session, topic, outbox):
    campaign = make_campaign(session, topic)
    session.commit()
    client = as_role("marketing")
    page = f"/admin/campaigns/{campaign.id}"
    post(client, f"{page}/test-send", {"to": "not an address"}, form_page=page)
    assert "Test copy not sent" in client.get(page).get_data(as_text=True)
    assert outbox() == []


def test_send_now_delivers_and_the_campaign_page_shows_the_figures(
    as_role, session, topic, run_campaign, outbox, clock
):
    for n in range(3):
        make_contact(session, f"p{n}@example.org", topics=[topic])
    gone = make_contact(session, "gone@example.org", topics=[topic])
    session.commit()
    consent.unsubscribe(session, gone, topic, channel="test", now=clock(), today=clock().date())
    session.commit()
    campaign = make_campaign(session, topic)
    session.commit()
    client = as_role("marketing")
    page = f"/admin/campaigns/{campaign.id}"
    assert post(client, f"{page}/send", form_page=page).status_code == 302
    run_campaign(campaign.id, launch=False)
    assert len(outbox()) == 3
    html = client.get(page).get_data(as_text=True)
    assert re.search(r"<dt>Sent</dt><dd data-figure=\"sent\">3</dd>", html)
    assert "unsubscribed" in html
    assert "<svg" in html
    progress = client.get(f"{page}/progress.json").get_json()
    assert progress["status"] == "sent"
    assert progress["sent"] == 3 and progress["percent"] == 100


def test_schedule_plans_the_draft_and_refuses_a_past_time(as_role, session, topic):
    campaign = make_campaign(session, topic)
    session.commit()
    client = as_role("marketing")
    page = f"/admin/campaigns/{campaign.id}"
    post(client, f"{page}/schedule", {"at": "2026-03-01T09:00"}, form_page=page)
    assert "Not scheduled: is in the past" in client.get(page).get_data(as_text=True)
    post(client, f"{page}/schedule", {"at": "2026-04-01T09:00"}, form_page=page)
    session.expire_all()
    assert campaign.status is CampaignStatus.SCHEDULED
    assert campaign.scheduled_at.isoformat() == "2026-04-01T07:00:00+00:00"


def test_pause_resume_and_cancel_buttons_change_the_campaign(as_role, session, topic):
    campaign = make_campaign(session, topic)
    campaign.status = CampaignStatus.SENDING
    session.commit()
    client = as_role("marketing")
    page = f"/admin/campaigns/{campaign.id}"
    post(client, f"{page}/pause", form_page=page)
    session.expire_all()
    assert campaign.status is CampaignStatus.PAUSED
    post(client, f"{page}/resume", form_page=page)
    session.expire_all()
    assert campaign.status is CampaignStatus.SENDING
    post(client, f"{page}/cancel", form_page=page)
    session.expire_all()
    assert campaign.status is CampaignStatus.CANCELLED
    post(client, f"{page}/pause", form_page=page)
    assert "not possible in the campaign" in client.get(page).get_data(as_text=True)
    actions = session.scalars(select(AuditEvent.action)).all()
    assert {"campaign.pause", "campaign.resume", "campaign.cancel"} <= set(actions)


# --- contacts -----------------------------------------------------------------------------


def test_contact_search_finds_by_part_of_name_or_address(as_role, session, topic):
    make_contact(session, "ana.peeters@example.org", first_name="Ana", last_name="Peeters")
    make_contact(session, "bram@example.org", first_name="Bram", last_name="Janssens")
    session.commit()
    client = as_role("privacy")
    page = client.get("/admin/contacts/", query_string={"q": "peet"}).get_data(as_text=True)
    assert "ana.peeters@example.org" in page
    assert "bram@example.org" not in page
    page = client.get("/admin/contacts/", query_string={"q": "100%_"}).get_data(as_text=True)
    assert "0 found" in page


def test_contact_page_shows_subscriptions_window_and_consent_history(
    as_role, session, topic, clock
):
    person = make_contact(session, "ana@example.org", topics=[topic], anchor=date(2025, 6, 1))
    consent.unsubscribe(
        session, person, topic, channel="one-click", now=clock(), today=clock().date()
    )
    session.commit()
    page = as_role("marketing").get(f"/admin/contacts/{person.public_id}").get_data(as_text=True)
    assert "Nieuwe opleidingen" in page
    assert "2031-03-10" in page  # unsubscribing is a preference change: it moves the anchor
    assert "one-click" in page


def test_unknown_contact_is_404(as_role):
    assert as_role("marketing").get("/admin/contacts/nope").status_code == 404


# --- import -------------------------------------------------------------------------------

CSV = (
    b"email;first_name;language;topics;basis;basis_date\n"
    b"new@example.org;Nieuw;nl;nieuwe-opleidingen;consent;2026-01-10\n"
    b"old@example.org;Oud;fr;nieuwe-opleidingen;consent;2026-01-10\n"
    b"erased@example.org;Weg;nl;nieuwe-opleidingen;consent;2026-01-10\n"
    b"not-an-address;X;nl;;;\n"
    b"bad@example.org;Y;de;;;\n"
)


def upload(client, data: bytes = CSV, name: str = "contacts.csv"):
    return post(
        client,
        "/admin/import",
        {"file": (io.BytesIO(data), name)},
        form_page="/admin/import",
        content_type="multipart/form-data",
    )


def test_import_previews_without_writing_then_commits(as_role, session, topic, settings):
    make_contact(session, "old@example.org", first_name="Old", language="fr")
    suppression.add(
        session, settings.suppression_key, "erased@example.org", SuppressionReason.ERASURE
    )
    session.commit()
    client = as_role("marketing")
    preview = upload(client)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert re.search(r"New contacts</dt><dd>1<", page)
    assert re.search(r"Updated</dt><dd>1<", page)
    assert re.search(r"Suppressed \(never re-added\)</dt><dd>1<", page)
    assert re.search(r"Rejected</dt><dd>2<", page)
    assert re.search(r"<td class=\"num\">5</td><td>email</td>", page)
    assert re.search(r"<td class=\"num\">6</td><td>language</td>", page)
    from prefsvc.people import contacts

    assert contacts.find(session, "new@example.org") is None
    done = post(client, "/admin/import/commit", form_page="/admin/import")
    assert "Import done" in done.get_data(as_text=True)
    session.expire_all()
    assert contacts.find(session, "new@example.org") is not None
    assert contacts.find(session, "erased@example.org") is None
    again = post(client, "/admin/import/commit", form_page="/admin/import")
    assert again.status_code == 302  # the same upload is not imported twice


def test_import_of_a_binary_file_is_refused_with_a_reason(as_role):
    response = upload(as_role("marketing"), b"\x00\x01\x02PK", "contacts.csv")
    assert response.status_code == 422
    assert "Error:" in response.get_data(as_text=True)


# --- suppression and rights ---------------------------------------------------------------


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
