"""``/c/<token>``: a tracked campaign's mail links count clicks and lead only to its own URLs."""

from __future__ import annotations

import re

import pytest

from prefsvc.mail import clicks
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
HTML = (
    '<p>Hallo {{ contact.first_name }}, <a href="https://opleidingen.example.org/o/1">meer</a></p>'
)


def test_a_tracked_campaigns_link_redirects_and_is_counted_without_naming_anyone(
    client, session, settings, run_campaign, outbox
):
    topic = make_topic(session, "nieuws", "Nieuws")
    people = [make_contact(session, f"p{i}@example.org", topics=[topic]) for i in range(2)]
    campaign = make_campaign(session, topic, html=HTML)
    campaign.track_clicks = True
    session.commit()

    run_campaign(campaign.id, timeout=20)

    messages = outbox()
    links = set()
    for message in messages:
        html = message.get_body(("html",)).get_content()
        found = re.findall(r'href="(https://news\.example\.org/c/[^"]+)"', html)
        assert len(found) == 1
        links.add(found[0])
        plain = message.get_body(("plain",)).get_content()
        assert "https://opleidingen.example.org/o/1" in plain  # the text part is not counted
    assert len(messages) == 2 and len(links) == 1  # the same link for everyone
    path = links.pop().removeprefix("https://news.example.org")
    assert all(p.public_id not in path for p in people)

    assert client.head(path).status_code == 302
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://opleidingen.example.org/o/1"
    assert response.headers["Cache-Control"] == "no-store"
    client.get(path)

    session.expire_all()
    assert clicks.figures(session, campaign) == {
        "total": 2,
        "links": [{"link": 0, "url": "https://opleidingen.example.org/o/1", "clicks": 2}],
    }


def test_a_forged_or_foreign_click_token_is_404_and_redirects_nowhere(client, session, settings):
    topic = make_topic(session, "nieuws", "Nieuws")
    campaign = make_campaign(session, topic, html=HTML)
    session.commit()
    for token in (
        clicks.token(settings.secret_keys, campaign.id, 0),  # not tracked: no stored link
        clicks.token(("someone-else's-key",), campaign.id, 0),
        "garbage",
    ):
        response = client.get(f"/c/{token}")
        assert response.status_code == 404
        assert "Location" not in response.headers
