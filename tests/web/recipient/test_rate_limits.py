"""Rate limits of the recipient pages: per address, per client, per link, one-click floods."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from prefsvc.mail.tokens import Signer
from prefsvc.models import Subscription
from prefsvc.settings import Settings
from prefsvc.web.recipient.rate_limits import OneClickFloodGuard
from tests.factories import make_contact, make_topic
from tests.web.recipient.conftest import ask, delivered


@pytest.fixture
def ana(session):
    """Ana as the sign-in tests know her: French, on no topic."""
    contact = make_contact(session, "ana@example.org", language="fr")
    session.commit()
    return contact


def test_too_many_requests_for_one_address_get_a_readable_429(client, ana, outbox):
    for _ in range(3):
        assert ask(client, "ana@example.org").status_code == 200
    limited = ask(client, "ANA@example.org", **{"Accept-Language": "fr-BE"})
    assert limited.status_code == 429
    page = limited.get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "<h1>Trop de tentatives</h1>" in page
    assert len(delivered(outbox)) == 3
    assert ask(client, "other@example.org").status_code == 200  # another address is not blocked


def test_too_many_requests_from_one_client_are_limited(client):
    answers = [ask(client, f"person{n}@example.org").status_code for n in range(7)]
    assert answers == [200] * 6 + [429]


@pytest.mark.parametrize(
    ("language", "heading"),
    [("nl", "Te veel pogingen"), ("fr", "Trop de tentatives"), ("en", "Too many attempts")],
)
def test_a_limited_link_answers_in_the_contacts_language(app, session, settings, language, heading):
    from prefsvc.settings import SETTINGS_KEY

    app.extensions[SETTINGS_KEY] = settings.with_(rate_limit_token="2 per minute")
    topic = make_topic(session)
    contact = make_contact(session, language=language, topics=[topic])
    session.commit()
    link = f"/u/{Signer(settings.secret_keys).unsubscribe_token(contact.public_id, topic.id)}"
    client = app.test_client()
    assert [client.get(link).status_code for _ in range(2)] == [200, 200]
    limited = client.get(link, headers={"Accept-Language": "de"})
    assert limited.status_code == 429
    assert f"<h1>{heading}</h1>" in limited.get_data(as_text=True)
    assert limited.headers["Cache-Control"] == "no-store"
    assert client.get(f"{link}x").status_code == 404  # another link is counted apart


@pytest.mark.parametrize("broker_kind", ["stub", "redis"])
def test_limits_are_counted_in_redis_when_the_broker_is_redis(app, client, settings, broker_kind):
    from prefsvc.extensions import limiter

    storage = type(limiter.storage).__name__
    assert storage == ("RedisStorage" if broker_kind == "redis" else "MemoryStorage")
    answers = [ask(client, "ana@example.org").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]


def test_mailbox_providers_posting_one_click_have_their_own_client_limit(app, session, settings):
    from prefsvc.settings import SETTINGS_KEY

    app.extensions[SETTINGS_KEY] = settings.with_(
        rate_limit_token_client="3 per minute", rate_limit_one_click_client="1000 per minute"
    )
    topic = make_topic(session)
    people = [make_contact(session, topics=[topic]) for _ in range(5)]
    session.commit()
    signer = Signer(settings.secret_keys)
    provider = app.test_client(use_cookies=False)
    links = [f"/u/{signer.unsubscribe_token(p.public_id, topic.id)}" for p in people]
    answers = [provider.post(link, data={"List-Unsubscribe": "One-Click"}) for link in links]
    assert [r.status_code for r in answers] == [200] * 5
    assert [provider.get(link).status_code for link in links[:4]] == [200, 200, 200, 429]


def test_a_client_flooding_one_click_posts_is_turned_away_in_its_language(app, session, settings):
    from prefsvc.models import Language
    from prefsvc.settings import SETTINGS_KEY

    app.extensions[SETTINGS_KEY] = settings.with_(rate_limit_one_click_client="3 per minute")
    # A still clock: the four POSTs fall in one window even when a minute turns meanwhile.
    app.extensions[OneClickFloodGuard.KEY] = OneClickFloodGuard(clock=lambda: 30.0)
    topic = make_topic(session)
    people = [make_contact(session, topics=[topic], language=Language.FR) for _ in range(5)]
    session.commit()
    signer = Signer(settings.secret_keys)
    links = [f"/u/{signer.unsubscribe_token(p.public_id, topic.id)}" for p in people]
    flood = app.test_client(use_cookies=False)
    answers = [flood.post(link, data={"List-Unsubscribe": "One-Click"}) for link in links[:4]]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert 'lang="fr"' in answers[3].get_data(as_text=True)
    assert answers[3].headers["Cache-Control"] == "no-store"
    other = app.test_client(use_cookies=False)
    answer = other.post(links[4], environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert answer.status_code == 200  # another client is counted apart
    left = session.scalars(select(Subscription).where(Subscription.status == "unsubscribed"))
    assert sorted(s.contact_id for s in left) == sorted(p.id for p in people[:3] + people[4:])


def test_the_one_click_flood_guard_admits_a_client_again_in_the_next_window():
    now = [0.0]
    guard = OneClickFloodGuard(clock=lambda: now[0])
    limits = "2 per minute; 3 per hour"
    assert [guard.admit(limits, "192.0.2.1") for _ in range(3)] == [True, True, False]
    assert guard.admit(limits, "192.0.2.2")  # counted per client
    now[0] = 61.0
    assert [guard.admit(limits, "192.0.2.1") for _ in range(2)] == [False, False]  # hourly spent
    assert guard.admit(limits, "192.0.2.2")
    now[0] = 3601.0
    assert guard.admit(limits, "192.0.2.1")


def test_a_one_click_link_posted_again_and_again_is_never_turned_away(app, session, settings):
    """Providers retry; a repeated one-click changes nothing, so only the client is limited."""
    from prefsvc.settings import SETTINGS_KEY

    app.extensions[SETTINGS_KEY] = settings.with_(rate_limit_token="2 per minute")
    topic = make_topic(session)
    contact = make_contact(session, topics=[topic])
    session.commit()
    link = f"/u/{Signer(settings.secret_keys).unsubscribe_token(contact.public_id, topic.id)}"
    provider = app.test_client(use_cookies=False)
    answers = [provider.post(link, data={"List-Unsubscribe": "One-Click"}) for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 5
    assert provider.post(f"{link}/undo").status_code == 200
    assert provider.post(f"{link}/undo").status_code == 200
    assert provider.post(f"{link}/undo").status_code == 429  # undo mails: limited per link


def test_an_unreachable_limit_store_does_not_turn_unsubscribes_away(tmp_path, clock):
    from prefsvc import create_app
    from prefsvc.extensions import db

    settings = Settings.from_env(
        {
            "PREFSVC_BROKER_URL": "redis://127.0.0.1:1/0",
            "PREFSVC_SECRET_KEYS": "test-key-new-0123456789",
            "PREFSVC_SUPPRESSION_KEY": "test-suppression-key-0123456789",
        },
        instance_path=tmp_path,
    )
    app = create_app(settings, clock=clock)
    with app.app_context():
        db.create_all()
        topic = make_topic(db.session)
        contact = make_contact(db.session, topics=[topic])
        db.session.commit()
        link = f"/u/{Signer(settings.secret_keys).unsubscribe_token(contact.public_id, topic.id)}"
        client = app.test_client()
        assert client.get(link).status_code == 200
        assert client.get("/p").status_code == 200
        db.session.remove()
        db.engine.dispose()
