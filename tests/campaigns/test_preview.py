"""Preview and test send: the campaign as a recipient gets it; nothing is counted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from prefsvc.campaigns import campaigns, preview
from prefsvc.models import CampaignStatus, Delivery
from tests.factories import make_campaign, make_contact, make_topic


def test_preview_renders_for_a_known_contact_with_their_name_and_links(app, session, settings):
    topic = make_topic(session, "nieuws", "Nieuws")
    make_contact(session, "ana@example.org", first_name="Ana", language="fr", topics=[topic])
    campaign = campaigns.create(
        session,
        topic_slug="nieuws",
        variants={
            "nl": ("Hallo", "<p>Dag {{ contact.first_name }}</p>", None),
            "fr": ("Bonjour", "<p>Bonjour {{ contact.first_name }}</p>", None),
        },
    )
    known = preview.preview(session, campaign, settings=settings, to="ANA@example.org")
    assert known.subject == "Bonjour"
    assert "Bonjour Ana" in known.html
    assert f"{settings.base_url}/u/" in known.html and "test-preview" not in known.html

    sample = preview.preview(session, campaign, settings=settings, language="nl")
    assert sample.subject == "Hallo" and "Dag Test" in sample.html
    assert f"{settings.base_url}/u/test-preview" in sample.html


@pytest.mark.all_databases
def test_test_send_reaches_the_address_and_is_not_counted(runner, session, outbox):
    topic = make_topic(session)
    for i in range(2):
        make_contact(session, f"c{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    session.commit()
    result = runner.invoke(
        args=["campaigns", "test-send", str(campaign.id), "--to", "Boss@Example.org"]
    )
    assert result.exit_code == 0, result.stderr
    [message] = outbox()
    assert message["To"] == "boss@example.org"
    assert message["Subject"].startswith("[TEST] ")
    assert session.scalars(select(Delivery)).all() == []
    assert campaigns.get(session, campaign.id).status is CampaignStatus.DRAFT
