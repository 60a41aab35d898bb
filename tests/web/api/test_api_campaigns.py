"""JSON API: campaigns (variants, preview, test send, send, schedule, control)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import DEFAULT_HTML, make_campaign, make_contact, make_topic

VARIANTS = [
    {"language": "nl", "subject": "Nieuws voor {{ contact.first_name }}", "html": DEFAULT_HTML},
    {"language": "fr", "subject": "Nouvelles", "html": "<p>Bonjour {{ contact.first_name }}</p>"},
]


@pytest.fixture
def news(session):
    topic = make_topic(session, "nieuws", "Nieuws")
    session.commit()
    return topic


def test_a_campaign_is_created_as_a_draft_with_its_language_variants(client, news, bearer):
    response = client.post(
        "/api/v1/campaigns",
        headers=bearer("marketing"),
        json={"topic": "nieuws", "default_language": "nl", "variants": VARIANTS},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert (body["status"], body["topic"], body["languages"]) == ("draft", "nieuws", ["nl", "fr"])


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ({}, "nl"),
        ({"fallback": "fr"}, "fr"),
        ({"fallback": "none"}, None),
        ({"fallback": None}, None),
    ],
)
def test_a_campaign_names_its_fallback_and_who_gets_which_language(
    client, session, news, bearer, given, stored
):
    make_contact(session, "en@example.org", language="en", topics=[news])
    make_contact(session, "fr@example.org", language="fr", topics=[news])
    session.commit()
    created = client.post(
        "/api/v1/campaigns",
        headers=bearer("marketing"),
        json={"topic": "nieuws", "variants": VARIANTS, **given},
    ).get_json()
    shown = client.get(f"/api/v1/campaigns/{created['id']}", headers=bearer("marketing"))
    body = shown.get_json()
    assert created["fallback"] == body["fallback"] == stored
    english = {"excluded": 1} if stored is None else {stored: 1}
    assert body["by_language"] == {"en": english, "fr": {"fr": 1}}
    assert body["excluded"] == ({"no_variant_in_language": 1} if stored is None else {})


def test_a_fallback_the_campaign_was_not_written_in_is_refused(client, news, bearer):
    response = client.post(
        "/api/v1/campaigns",
        headers=bearer("marketing"),
        json={"topic": "nieuws", "variants": VARIANTS, "fallback": "en"},
    )
    assert response.status_code == 422
    assert "fallback" in response.get_json()["errors"]


@pytest.mark.parametrize(
    ("variants", "field"),
    [
        ([], "variants"),
        ([VARIANTS[0], VARIANTS[0]], "variants"),
        ([{**VARIANTS[0], "language": "de"}], "variants.0.language"),
        ([{**VARIANTS[0], "html": "{% if %}"}], "html"),
    ],
)
def test_a_bad_campaign_names_the_field(client, news, bearer, variants, field):
    response = client.post(
        "/api/v1/campaigns",
        headers=bearer("marketing"),
        json={"topic": "nieuws", "variants": variants},
    )
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_a_campaign_for_an_unknown_topic_is_404(client, bearer):
    response = client.post(
        "/api/v1/campaigns",
        headers=bearer("marketing"),
        json={"topic": "nope", "variants": VARIANTS[:1]},
    )
    assert response.status_code == 404


def test_preview_renders_the_campaign_for_one_contact_in_their_language(
    client, session, news, bearer
):
    ana = make_contact(session, "ana@example.org", first_name="Anaïs", language="fr")
    campaign = make_campaign(
        session,
        news,
        variants={
            "nl": ("Hallo {{ contact.first_name }}", DEFAULT_HTML, None),
            "fr": ("Bonjour {{ contact.first_name }}", DEFAULT_HTML, None),
        },
    )
    session.commit()
    response = client.post(
        f"/api/v1/campaigns/{campaign.id}/preview",
        headers=bearer("marketing"),
        json={"contact": ana.public_id},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["subject"] == "Bonjour Anaïs"
    assert "https://news.example.org/u/" in body["html"]
    assert body["text"]


@pytest.mark.parametrize("action", ["preview", "test-send"])
def test_a_template_that_breaks_on_a_contacts_data_is_a_problem_not_a_crash(
    client, session, news, bearer, outbox, action
):
    nameless = make_contact(session, "nameless@example.org", first_name=None)
    campaign = make_campaign(session, news, html="<p>Beste {{ contact.first_name.upper() }}</p>")
    session.commit()
    body = {"contact": nameless.public_id} if action == "preview" else {"to": nameless.email}
    response = client.post(
        f"/api/v1/campaigns/{campaign.id}/{action}", headers=bearer("marketing"), json=body
    )
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert "UndefinedError" in response.get_json()["errors"]["template"][0]
    assert outbox() == []


def test_preview_without_a_contact_uses_a_sample_person(client, session, news, bearer):
    campaign = make_campaign(session, news)
    session.commit()
    response = client.post(
        f"/api/v1/campaigns/{campaign.id}/preview", headers=bearer("marketing"), json={}
    )
    assert response.get_json()["subject"].startswith("Nieuw: Test")


def test_test_send_mails_one_marked_copy_and_counts_nothing(client, session, news, bearer, outbox):
    campaign = make_campaign(session, news)
    session.commit()
    response = client.post(
        f"/api/v1/campaigns/{campaign.id}/test-send",
        headers=bearer("marketing"),
        json={"to": "editor@example.org"},
    )
    assert response.status_code == 202
    (message,) = outbox()
    assert message["Subject"].startswith("[TEST]")
    assert message["To"] == "editor@example.org"
    stats = client.get(f"/api/v1/campaigns/{campaign.id}", headers=bearer("marketing"))
    assert stats.get_json()["sent"] == 0


def test_send_delivers_to_the_audience_and_reports_figures(
    client, session, news, bearer, outbox, run_campaign
):
    for i in range(3):
        make_contact(session, f"c{i}@example.org", topics=[news])
    campaign = make_campaign(session, news)
    session.commit()
    headers = bearer("marketing")

    response = client.post(f"/api/v1/campaigns/{campaign.id}/send", headers=headers)
    assert response.status_code == 202
    run_campaign(campaign.id, launch=False)

    stats = client.get(f"/api/v1/campaigns/{campaign.id}", headers=headers).get_json()
    assert (stats["status"], stats["audience"], stats["sent"]) == ("sent", 3, 3)
    assert len(outbox()) == 3
    again = client.post(f"/api/v1/campaigns/{campaign.id}/send", headers=headers)
    assert again.status_code == 409


def test_schedule_then_cancel(client, session, news, bearer):
    campaign = make_campaign(session, news)
    session.commit()
    headers = bearer("marketing")
    path = f"/api/v1/campaigns/{campaign.id}"

    past = client.post(f"{path}/schedule", headers=headers, json={"at": "2020-01-01T09:00:00"})
    assert past.status_code == 422
    assert "at" in past.get_json()["errors"]
    scheduled = client.post(f"{path}/schedule", headers=headers, json={"at": "2026-04-01T09:00"})
    assert scheduled.status_code == 200
    # no offset: read in Europe/Brussels (summer time, UTC+2)
    assert scheduled.get_json()["scheduled_at"] == "2026-04-01T07:00:00+00:00"

    cancelled = client.post(f"{path}/cancel", headers=headers)
    assert cancelled.get_json()["status"] == "cancelled"
    assert client.post(f"{path}/cancel", headers=headers).status_code == 409


@pytest.mark.parametrize("at", ["tomorrow", "99999-01-01T00:00:00", "9999-12-31T23:59:59-14:00"])
def test_a_bad_schedule_time_is_422(client, session, news, bearer, at):
    campaign = make_campaign(session, news)
    session.commit()
    response = client.post(
        f"/api/v1/campaigns/{campaign.id}/schedule", headers=bearer("marketing"), json={"at": at}
    )
    assert response.status_code == 422


def test_pausing_a_draft_is_409(client, session, news, bearer):
    campaign = make_campaign(session, news)
    session.commit()
    response = client.post(f"/api/v1/campaigns/{campaign.id}/pause", headers=bearer("marketing"))
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


def test_pause_and_resume_a_sending_campaign(client, session, news, bearer, clock):
    from prefsvc.campaigns import campaigns

    make_contact(session, "c@example.org", topics=[news])
    campaign = make_campaign(session, news)
    campaigns.start(session, campaign, now=clock(), today=clock().date(), years=5)
    session.commit()
    headers = bearer("marketing")
    paused = client.post(f"/api/v1/campaigns/{campaign.id}/pause", headers=headers)
    assert paused.get_json()["status"] == "paused"
    resumed = client.post(f"/api/v1/campaigns/{campaign.id}/resume", headers=headers)
    assert resumed.get_json()["status"] in ("sending", "sent")


def test_campaigns_are_listed_newest_first(client, session, news, bearer):
    first = make_campaign(session, news)
    second = make_campaign(session, news)
    session.commit()
    body = client.get("/api/v1/campaigns", headers=bearer("marketing")).get_json()
    assert [c["id"] for c in body["items"]] == [second.id, first.id]
    assert (
        client.get("/api/v1/campaigns?status=sent", headers=bearer("marketing")).get_json()["items"]
        == []
    )


# --- Markdown, preheader, duplicate, delete a draft, archive ----------------------------


def _sent(session, topic):
    """A campaign sent to nobody (no subscribers): finished at once."""
    from datetime import UTC, date, datetime

    from prefsvc.campaigns import campaigns

    campaign = make_campaign(session, topic)
    now = datetime(2026, 3, 10, 9, tzinfo=UTC)
    campaigns.start(session, campaign, now=now, today=date(2026, 3, 10), years=5)
    session.commit()
    return campaign.id


def _audited(session, action: str) -> list[str | None]:
    from prefsvc.models import AuditEvent

    return list(session.scalars(select(AuditEvent.target).where(AuditEvent.action == action)))


def test_a_markdown_campaign_with_preheaders_is_previewed_in_the_house_layout(client, news, bearer):
    headers = bearer("marketing")
    variants = [
        {"language": "fr", "subject": "Nouvelles", "preheader": "Cinq cours", "html": "# Bonjour"}
    ]
    created = client.post(
        "/api/v1/campaigns",
        headers=headers,
        json={"topic": "nieuws", "content_format": "markdown", "variants": variants},
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["content_format"] == "markdown"
    shown = client.post(
        f"/api/v1/campaigns/{created.get_json()['id']}/preview", headers=headers, json={}
    )
    html = shown.get_json()["html"]
    assert '<html lang="fr">' in html and "Cinq cours" in html and "Bonjour</h1>" in html


def test_duplicate_makes_a_draft_copy_and_is_audited(client, session, news, bearer):
    source = _sent(session, news)
    response = client.post(f"/api/v1/campaigns/{source}/duplicate", headers=bearer("marketing"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "draft" and body["id"] != source
    assert body["name"].endswith(" (copy)")
    assert _audited(session, "campaign.duplicate") == [f"campaign:{body['id']}"]


def test_delete_removes_a_draft_and_refuses_anything_else_with_409(client, session, news, bearer):
    headers = bearer("marketing")
    draft = make_campaign(session, news).id
    session.commit()
    assert client.delete(f"/api/v1/campaigns/{draft}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/campaigns/{draft}", headers=headers).status_code == 404
    assert _audited(session, "campaign.delete") == [f"campaign:{draft}"]

    sent = _sent(session, news)
    refused = client.delete(f"/api/v1/campaigns/{sent}", headers=headers)
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert client.get(f"/api/v1/campaigns/{sent}", headers=headers).status_code == 200


def test_an_archived_campaign_is_listed_only_under_the_archived_filter(
    client, session, news, bearer
):
    headers = bearer("marketing")
    draft = make_campaign(session, news).id
    session.commit()
    sent = _sent(session, news)
    assert client.post(f"/api/v1/campaigns/{draft}/archive", headers=headers).status_code == 409
    archived = client.post(f"/api/v1/campaigns/{sent}/archive", headers=headers, json={})
    assert archived.status_code == 200 and archived.get_json()["archived"] is True

    def listed(query: str = "") -> list[int]:
        page = client.get(f"/api/v1/campaigns{query}", headers=headers).get_json()
        return [item["id"] for item in page["items"]]

    assert listed() == [draft]
    assert listed("?archived=true") == [sent]
    assert sorted(listed("?archived=all")) == sorted([draft, sent])
    back = client.post(
        f"/api/v1/campaigns/{sent}/archive", headers=headers, json={"archived": False}
    )
    assert back.get_json()["archived"] is False
    assert _audited(session, "campaign.unarchive") == [f"campaign:{sent}"]


NESTED_LOOPS = (
    "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)


@pytest.mark.parametrize(
    ("field", "bomb", "reason"),
    [
        ("html", "<p>{{ 'a' * 300000000 }}</p>", "larger than 1,000,000 bytes"),
        ("subject", NESTED_LOOPS, "takes more than 1 s"),
    ],
)
def test_a_template_bomb_is_refused_with_422_naming_the_field(
    client, session, news, bearer, field, bomb, reason
):
    variant = {**VARIANTS[0], field: bomb}
    response = client.post(
        "/api/v1/campaigns",
        headers=bearer("marketing"),
        json={"topic": "nieuws", "variants": [variant]},
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert reason in response.get_json()["errors"][field][0]


def test_every_template_error_of_every_language_is_reported_at_once(client, news, bearer):
    variants = [
        {**VARIANTS[0], "subject": "{{ contact.first_name", "text": "{% if %}"},
        {**VARIANTS[1], "html": "<p>{{ contact|nofilter }}</p>"},
    ]
    response = client.post(
        "/api/v1/campaigns",
        headers=bearer("marketing"),
        json={"topic": "nieuws", "variants": variants},
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"subject", "html", "text"}
    assert errors["subject"][0].startswith("nl: template error")
    assert errors["text"][0].startswith("nl: template error")
    assert len(errors["html"]) == 1 and errors["html"][0].startswith("fr: template error")
    assert "nofilter" in errors["html"][0]


def test_click_counting_is_off_unless_asked_for(client, news, bearer):
    plain, tracked = (
        client.post(
            "/api/v1/campaigns",
            headers=bearer("marketing"),
            json={"topic": "nieuws", "variants": VARIANTS, **extra},
        ).get_json()
        for extra in ({}, {"track_clicks": True})
    )
    assert (plain["track_clicks"], plain["clicks"]) == (False, None)
    assert (tracked["track_clicks"], tracked["clicks"]) == (True, {"total": 0, "links": []})
