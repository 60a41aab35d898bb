"""Click figures: links rewritten once per campaign, counted per link, never per person."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from prefsvc.campaigns import campaigns
from prefsvc.errors import InvalidToken
from prefsvc.mail import clicks
from prefsvc.models import LinkClick
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
KEYS = ("old-key-0123456789", "new-key-0123456789")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
HTML = (
    '<p><a href="https://example.org/a?x=1&amp;y=2">A</a> <a href="https://example.org/b">B</a>'
    ' <a href="{{ unsubscribe_url }}">weg</a> <a href="mailto:x@example.org">mail</a>'
    ' <a href="https://example.org/a?x=1&amp;y=2">A again</a></p>'
)


def test_the_distinct_web_links_are_found_in_order_without_template_links():
    assert clicks.links_in(HTML) == ["https://example.org/a?x=1&y=2", "https://example.org/b"]


def test_a_token_names_the_campaign_and_link_and_verifies_with_an_older_key():
    token = clicks.token(KEYS[:1], 7, 3)
    assert clicks.read_token(KEYS, token) == (7, 3)
    for forged in ("", token[:-2], token + "x", "a" * 300, clicks.token(("other-key-x",), 7, 3)):
        with pytest.raises(InvalidToken):
            clicks.read_token(KEYS, forged)


@pytest.fixture
def tracked(session):
    topic = make_topic(session)
    make_contact(session, topics=[topic])
    campaign = make_campaign(session, topic, html=HTML)
    campaign.track_clicks = True
    campaigns.start(session, campaign, now=NOW, today=NOW.date(), years=5)
    session.commit()
    return campaign


def test_fan_out_stores_the_links_and_clicks_are_counted_per_link(session, tracked):
    rows = session.scalars(select(LinkClick).order_by(LinkClick.link)).all()
    assert [(r.link, r.url, r.clicks) for r in rows] == [
        (0, "https://example.org/a?x=1&y=2", 0),
        (1, "https://example.org/b", 0),
    ]
    first = clicks.token(KEYS, tracked.id, 0)
    assert clicks.follow(session, KEYS, first) == "https://example.org/a?x=1&y=2"
    clicks.follow(session, KEYS, first)
    clicks.follow(session, KEYS, clicks.token(KEYS, tracked.id, 1))
    session.commit()
    assert clicks.figures(session, tracked) == {
        "total": 3,
        "links": [
            {"link": 0, "url": "https://example.org/a?x=1&y=2", "clicks": 2},
            {"link": 1, "url": "https://example.org/b", "clicks": 1},
        ],
    }


def test_a_link_the_campaign_does_not_have_leads_nowhere(session, tracked):
    for campaign_id, link in ((tracked.id, 2), (tracked.id + 1, 0)):
        with pytest.raises(InvalidToken):
            clicks.follow(session, KEYS, clicks.token(KEYS, campaign_id, link))


def test_links_are_rewritten_to_redirects_that_name_no_person(session, tracked):
    tracking = clicks.tracking(tracked, base_url="https://news.example.org", secret_keys=KEYS)
    html = tracking.rewrite(HTML)
    assert "https://example.org/" not in html
    assert html.count("https://news.example.org/c/") == 3
    assert '"{{ unsubscribe_url }}"' in html and "mailto:x@example.org" in html


def test_a_campaign_that_does_not_count_clicks_is_left_alone(session):
    topic = make_topic(session)
    campaign = make_campaign(session, topic, html=HTML)
    campaigns.start(session, campaign, now=NOW, today=NOW.date(), years=5)
    assert clicks.tracking(campaign, base_url="https://x", secret_keys=KEYS) is None
    assert clicks.figures(session, campaign) is None
    assert session.scalars(select(LinkClick)).all() == []
