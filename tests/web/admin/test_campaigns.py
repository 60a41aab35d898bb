"""The admin campaign pages over HTTP: compose, preview, test-send, send, schedule, control."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from prefsvc.consent import changes as consent
from prefsvc.models import AuditEvent, Campaign, CampaignStatus
from tests.factories import make_campaign, make_contact
from tests.web.admin.conftest import post

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


def test_composer_reports_subject_html_and_text_errors_of_every_language_at_once(
    as_role, session, topic
):
    client = as_role("marketing")
    form = compose_form(
        topic.slug,
        subject_nl="{{ contact.first_name",
        html_nl="<p>{{ 'a' * 300000000 }}</p>",
        text_nl="{% for %}",
        html_fr="<p>{{ x|nofilter }}</p>",
    )
    response = post(client, "/admin/campaigns/new", form, form_page="/admin/campaigns/new")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for field, lang in [("subject", "nl"), ("html", "nl"), ("text", "nl"), ("html", "fr")]:
        assert f'id="error-{field}-{lang}"' in page
    assert "larger than 1,000,000 bytes" in page
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


@pytest.mark.all_databases
def test_the_campaign_page_shows_net_unsubscribes_per_language_axes_and_clicks(
    as_role, session, topic, run_campaign, clock
):
    readers = [
        make_contact(session, f"{lang}{n}@example.org", topics=[topic], language=lang)
        for n, lang in enumerate(("nl", "fr", "fr"))
    ]
    session.commit()
    client = as_role("marketing")
    form = compose_form(
        topic.slug,
        html_nl='<p><a href="https://example.org/info">Info</a></p>',
        track_clicks="1",
    )
    created = post(client, "/admin/campaigns/new", form, form_page="/admin/campaigns/new")
    campaign = session.scalars(select(Campaign)).one()
    assert campaign.track_clicks and 'id="track_clicks"' in client.get(
        created.headers["Location"]
    ).get_data(as_text=True)
    run_campaign(campaign.id)
    clock.advance(seconds=60)
    for person in readers[1:]:  # both French readers leave; one of them comes back
        consent.unsubscribe(
            session, person, topic, channel="test", now=clock(), today=clock().date()
        )
    clock.advance(seconds=60)
    consent.subscribe(session, readers[2], topic, channel="test", now=clock(), today=clock().date())
    session.commit()

    html = client.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)

    assert re.search(r'Unsubscribed \(net\)</dt><dd data-figure="unsubscribes">1</dd>', html)
    assert re.search(r"Unsubscribed, then undone</dt><dd>1</dd>", html)
    assert re.search(
        r'<th scope="row"[^>]*>Français</th><td class="num"[^>]*>2</td>'
        r'<td class="num"[^>]*>0</td><td class="num"[^>]*>1</td>',
        html,
    )
    assert "Vertical: recipients, running total." in html
    assert "Horizontal: time (Europe/Brussels)" in html
    assert "Clicks per link (who clicked is not recorded)" in html
    assert "https://example.org/info" in html


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


def _nl_fr_campaign_and_readers(session, topic, fallback):
    for lang in ("nl", "fr", "en"):
        make_contact(session, f"{lang}@example.org", language=lang, topics=[topic])
    variants = {
        "nl": ("Nieuw aanbod", HTML_NL, None),
        "fr": ("Nouvelle offre", HTML_FR, None),
    }
    campaign = make_campaign(session, topic, variants=variants, fallback=fallback)
    session.commit()
    return campaign


def test_send_now_asks_for_confirmation_repeating_the_audience_and_languages(
    as_role, session, topic, outbox
):
    campaign = _nl_fr_campaign_and_readers(session, topic, None)
    client = as_role("marketing")
    page = f"/admin/campaigns/{campaign.id}"
    draft = client.get(page).get_data(as_text=True)
    assert f'action="{page}/send"' not in draft  # no one-click send from the composer
    assert f'href="{page}/send"' in draft

    confirm = client.get(f"{page}/send")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200
    assert "This sends it now to 2 recipients" in html
    assert re.search(r'data-reader="en" data-variant="excluded">.*?no version in their', html, re.S)
    assert re.search(r'data-reader="fr" data-variant="fr">', html)
    assert "Readers of another language are not sent it." in html
    assert f'action="{page}/send"' in html and 'name="csrf_token"' in html
    assert outbox() == []
    session.expire_all()
    assert campaign.status is CampaignStatus.DRAFT

    assert client.post(f"{page}/send").status_code == 400  # the form's CSRF token is needed
    assert post(client, f"{page}/send", form_page=f"{page}/send").status_code == 302
    session.expire_all()
    assert campaign.status is not CampaignStatus.DRAFT


def test_the_confirmation_of_a_campaign_already_sent_goes_back_to_its_page(as_role, session, topic):
    campaign = make_campaign(session, topic)
    campaign.status = CampaignStatus.SENT
    session.commit()
    response = as_role("marketing").get(f"/admin/campaigns/{campaign.id}/send")
    assert response.status_code == 302


def test_the_draft_shows_who_gets_which_language_before_sending(as_role, session, topic):
    campaign = _nl_fr_campaign_and_readers(session, topic, "nl")
    html = as_role("marketing").get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    assert re.search(r'data-reader="en" data-variant="nl">', html)
    assert "footer and pages in their own language" in html
    assert re.search(r'<option value="nl" selected>', html)


def test_the_composer_saves_the_fallback_and_refuses_one_not_written(as_role, session, topic):
    client = as_role("marketing")
    form = compose_form(topic.slug, fallback="en")
    refused = post(client, "/admin/campaigns/new", form, form_page="/admin/campaigns/new")
    assert refused.status_code == 422
    assert 'id="error-fallback-all"' in refused.get_data(as_text=True)
    form = compose_form(topic.slug, fallback="none")
    saved = post(client, "/admin/campaigns/new", form, form_page="/admin/campaigns/new")
    assert saved.status_code == 302
    campaign = session.scalars(select(Campaign)).one()
    assert campaign.fallback_language is None
    page = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert '<option value="none" selected>' in page


# --- Markdown, preheader, duplicate, delete a draft, archive, content of a sent campaign ---


def _sent(session, topic):
    """A campaign sent to nobody: finished at once."""
    from datetime import UTC, date, datetime

    from prefsvc.campaigns import campaigns

    campaign = make_campaign(session, topic, subject="Maartnieuws")
    now = datetime(2026, 3, 10, 9, tzinfo=UTC)
    campaigns.start(session, campaign, now=now, today=date(2026, 3, 10), years=5)
    session.commit()
    return campaign


def _audited(session, action: str) -> list[str | None]:
    return list(session.scalars(select(AuditEvent.target).where(AuditEvent.action == action)))


def test_a_new_campaign_is_written_in_markdown_with_a_preheader(as_role, session, topic):
    client = as_role("marketing")
    page = client.get("/admin/campaigns/new").get_data(as_text=True)
    assert 'name="content_format" value="markdown" checked' in page
    form = compose_form(
        topic.slug,
        content_format="markdown",
        name="Maart",
        html_nl="# Beste {{ contact.first_name }}\n\nNieuwe **opleidingen**.",
        html_fr="Bonjour *{{ contact.first_name }}*",
        preheader_nl="Vijf nieuwe cursussen",
    )
    response = post(client, "/admin/campaigns/new", form, form_page="/admin/campaigns/new")
    assert response.status_code == 302
    campaign = session.scalars(select(Campaign)).one()
    assert (campaign.content_format.value, campaign.name) == ("markdown", "Maart")
    preview = client.get(f"/admin/campaigns/{campaign.id}/preview/nl").get_data(as_text=True)
    assert '<html lang="nl">' in preview and "Vijf nieuwe cursussen" in preview
    assert "opleidingen</strong>" in preview


def test_duplicate_opens_a_new_draft_and_is_audited(as_role, session, topic):
    source = _sent(session, topic)
    client = as_role("marketing")
    page = f"/admin/campaigns/{source.id}"
    response = post(client, f"{page}/duplicate", form_page=page)
    assert response.status_code == 302
    copy = session.scalars(select(Campaign).where(Campaign.id != source.id)).one()
    assert response.headers["Location"].endswith(f"/admin/campaigns/{copy.id}")
    assert copy.status is CampaignStatus.DRAFT and copy.name == "Maartnieuws (copy)"
    assert _audited(session, "campaign.duplicate") == [f"campaign:{copy.id}"]
    assert "Maartnieuws (copy)" in client.get("/admin/campaigns/").get_data(as_text=True)


def test_a_draft_can_be_deleted_but_a_sent_campaign_cannot(as_role, session, topic):
    draft = make_campaign(session, topic)
    session.commit()
    sent = _sent(session, topic)
    client = as_role("marketing")
    page = f"/admin/campaigns/{draft.id}"
    assert "Delete draft" in client.get(page).get_data(as_text=True)
    response = post(client, f"{page}/delete", form_page=page)
    assert response.status_code == 302
    assert session.get(Campaign, draft.id) is None
    assert _audited(session, "campaign.delete") == [f"campaign:{draft.id}"]

    sent_page = f"/admin/campaigns/{sent.id}"
    refused = post(client, f"{sent_page}/delete", form_page=sent_page, follow_redirects=True)
    assert "Only a draft can be deleted" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(Campaign, sent.id) is not None


def test_an_archived_campaign_shows_only_under_the_archive_filter(as_role, session, topic):
    sent = _sent(session, topic)
    client = as_role("marketing")
    page = f"/admin/campaigns/{sent.id}"
    response = post(client, f"{page}/archive", form_page=page, follow_redirects=True)
    assert "archived" in response.get_data(as_text=True)
    assert "Maartnieuws" not in client.get("/admin/campaigns/").get_data(as_text=True)
    assert "Maartnieuws" in client.get("/admin/campaigns/?archived=1").get_data(as_text=True)
    assert _audited(session, "campaign.archive") == [f"campaign:{sent.id}"]
    post(client, f"{page}/unarchive", form_page=page)
    assert "Maartnieuws" in client.get("/admin/campaigns/").get_data(as_text=True)


def test_a_sent_campaigns_page_shows_its_content_per_language(as_role, session, topic):
    campaign = make_campaign(
        session,
        topic,
        variants={"nl": ("Nieuws", HTML_NL, None), "fr": ("Nouvelles", HTML_FR, None)},
    )
    campaign.variants[1].preheader = "Cinq cours"
    session.flush()
    from datetime import UTC, date, datetime

    from prefsvc.campaigns import campaigns

    campaigns.start(
        session, campaign, now=datetime(2026, 3, 10, tzinfo=UTC), today=date(2026, 3, 10), years=5
    )
    session.commit()
    page = as_role("marketing").get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Content, per language" in page
    for lang in ("nl", "fr"):
        assert f'src="/admin/campaigns/{campaign.id}/preview/{lang}"' in page
    assert "Cinq cours" in page and "Nouvelles" in page and "<iframe sandbox" in page


def test_a_sent_campaign_whose_content_no_longer_renders_still_shows_its_page(
    as_role, session, topic
):
    from datetime import UTC, date, datetime

    from prefsvc.campaigns import campaigns

    campaign = make_campaign(session, topic, html="<p>{{ contact.first_name </p>")
    campaigns.start(
        session, campaign, now=datetime(2026, 3, 10, tzinfo=UTC), today=date(2026, 3, 10), years=5
    )
    session.commit()
    response = as_role("marketing").get(f"/admin/campaigns/{campaign.id}")
    assert response.status_code == 200
    assert "This version can no longer be shown." in response.get_data(as_text=True)
