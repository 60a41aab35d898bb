"""GET/POST /s: the sign-up form, its JSON twin for other sites, bots, CORS and confirming."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from prefsvc.consent import suppression
from prefsvc.extensions import limiter
from prefsvc.models import ConsentEvent, Contact, SignupRequest, SuppressionReason
from prefsvc.recipient import signup
from tests.factories import make_topic
from tests.web.recipient.conftest import delivered

SITE = "https://www.example.org"


@pytest.fixture
def settings(settings):
    return settings.with_(
        signup_allowed_origins=(SITE,),
        privacy_url="https://www.example.org/privacy",
        rate_limit_signup_client="8 per hour",
        rate_limit_signup_address="2 per hour",
    )


@pytest.fixture
def haven(session):
    topic = make_topic(
        session,
        slug="haven",
        names={"nl": "Haven", "fr": "Port", "en": "Port news"},
        descriptions={"nl": "Elke maand", "fr": "Chaque mois", "en": "Every month"},
    )
    make_topic(session, slug="cursussen", names={"nl": "Cursussen", "fr": "Cours", "en": "Courses"})
    session.commit()
    return topic


def form_token(client, path: str = "/s") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="form_token" value="([^"]+)"', page).group(1)


def sign_up(client, clock, email="lea@example.org", path="/s", **fields):
    token = form_token(client, path)
    clock.advance(seconds=10)
    data = {
        "form_token": token,
        "email": email,
        "first_name": "Lea",
        "language": "fr",
        "topics": ["haven"],
        "consent": "yes",
    }
    data.update(fields)
    return client.post(path, data=data, headers={"Accept-Language": "en"})


def confirmation_link(outbox) -> str:
    [mail] = delivered(outbox)
    return re.search(r"https://news\.example\.org(/s/confirm/\S+)", mail.get_content()).group(1)


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("language", "heading", "topic"),
    [("nl", "Abonneer u op onze nieuwsbrieven", "Haven"), ("fr", "Abonnez-vous", "Port")],
)
def test_the_form_speaks_the_readers_language_and_links_the_privacy_statement(
    client, haven, language, heading, topic
):
    response = client.get(f"/s?lang={language}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert heading in page and f">{topic}</label>" in page
    assert 'href="https://www.example.org/privacy"' in page
    assert 'name="website"' in page and 'tabindex="-1"' in page  # the honeypot
    assert response.headers["Cache-Control"] == "no-store"


def test_a_topic_page_offers_that_topic_only_and_an_unknown_one_is_404(client, haven):
    page = client.get("/s/haven?lang=en").get_data(as_text=True)
    assert ">Port news</label>" in page and "Courses" not in page
    assert client.get("/s/nope").status_code == 404


def test_known_new_and_suppressed_addresses_get_the_same_answer(
    client, clock, session, settings, haven, outbox
):
    session.add(Contact(email="ana@example.org", window_anchor=clock().date()))
    suppression.add(
        session, settings.suppression_key, "gone@example.org", SuppressionReason.ERASURE
    )
    session.commit()
    answers = [
        sign_up(client, clock, email)
        for email in ("lea@example.org", "ana@example.org", "gone@example.org")
    ]
    assert {a.status_code for a in answers} == {200}
    bodies = {re.sub(r'value="[^"]+"', "", a.get_data(as_text=True)) for a in answers}
    assert len(bodies) == 1
    assert "Check your mailbox" in bodies.pop()
    assert sorted(m["To"] for m in delivered(outbox)) == ["ana@example.org", "lea@example.org"]


def test_the_link_shows_a_button_and_only_the_post_subscribes(
    client, clock, session, haven, outbox
):
    sign_up(client, clock)
    link = confirmation_link(outbox)
    for _ in range(2):  # a mail scanner, then the person
        page = client.get(link)
        assert page.status_code == 200
        assert '<html lang="fr">' in page.get_data(as_text=True)
        assert "Oui, abonnez-moi" in page.get_data(as_text=True)
    assert client.head(link).status_code == 200
    assert count(session, Contact) == 0 and count(session, ConsentEvent) == 0

    done = client.post(link)
    assert done.status_code == 200
    assert "Vous êtes abonné" in done.get_data(as_text=True)
    contact = session.scalar(select(Contact).where(Contact.email == "lea@example.org"))
    [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact.id))
    assert event.detail["consent_version"] == signup.CONSENT_VERSION
    assert client.post(link).status_code == 404  # used up
    preferences = re.search(r'href="(/p/[^"]+)"', done.get_data(as_text=True)).group(1)
    centre = client.get(preferences).get_data(as_text=True)
    assert "formulaire d’inscription, confirmé par e-mail" in centre


def test_a_filled_in_honeypot_gets_the_answer_and_nothing_is_recorded(
    client, clock, session, haven, outbox
):
    response = sign_up(client, clock, website="https://spam.example")
    assert response.status_code == 200 and "Check your mailbox" in response.get_data(as_text=True)
    assert count(session, SignupRequest) == 0 and delivered(outbox) == []


def test_a_form_sent_back_at_once_or_a_day_later_is_refused_with_a_fresh_form(
    client, clock, session, haven
):
    token = form_token(client)
    fast = client.post(
        "/s?lang=en",
        data={"form_token": token, "email": "lea@example.org", "language": "fr"}
        | {"topics": "haven", "consent": "yes"},
    )
    assert fast.status_code == 400
    page = fast.get_data(as_text=True)
    assert "sent back too quickly" in page and 'value="lea@example.org"' in page
    clock.advance(hours=25)
    late = client.post(
        "/s",
        data={"form_token": token, "email": "lea@example.org", "language": "fr"}
        | {"topics": "haven", "consent": "yes"},
    )
    assert late.status_code == 400
    assert count(session, SignupRequest) == 0


def test_a_missing_consent_is_named_on_the_form(client, clock, haven):
    response = sign_up(client, clock, consent="")
    assert response.status_code == 400
    assert 'id="consent-error"' in response.get_data(as_text=True)


def test_another_site_posts_json_with_cors_for_allowed_origins_only(client, clock, session, haven):
    form = client.get("/s/form?lang=fr", headers={"Origin": SITE})
    assert form.headers["Access-Control-Allow-Origin"] == SITE
    body = form.get_json()
    assert body["topics"][0] == {"slug": "haven", "name": "Port", "description": "Chaque mois"}
    assert body["consent_version"] == signup.CONSENT_VERSION and body["honeypot"] == "website"

    preflight = client.options(
        "/s",
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"

    clock.advance(seconds=10)
    payload = {
        "form_token": body["form_token"],
        "email": "lea@example.org",
        "language": "fr",
        "topics": ["haven"],
        "consent": True,
    }
    answer = client.post("/s", json=payload, headers={"Origin": SITE})
    assert answer.status_code == 202 and answer.get_json()["status"] == "pending"
    assert answer.headers["Access-Control-Allow-Origin"] == SITE
    assert count(session, SignupRequest) == 1

    elsewhere = client.post(
        "/s", json=payload | {"email": "x@example.org"}, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in elsewhere.headers
    bad = client.post("/s", json=payload | {"email": "nope"}, headers={"Origin": SITE})
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert list(bad.get_json()["errors"]) == ["email"]


def test_the_form_may_be_framed_by_the_allowed_sites_only(client, haven):
    policy = client.get("/s").headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {SITE};" in policy
    assert "frame-ancestors 'none'" in client.get("/p").headers["Content-Security-Policy"]


def test_sign_ups_are_limited_per_address_and_per_client(client, clock, haven):
    codes = [sign_up(client, clock, "lea@example.org").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    codes = [sign_up(client, clock, f"p{i}@example.org").status_code for i in range(7)]
    assert codes[-1] == 429
    refused = client.post("/s", json={"email": "q@example.org"}, headers={"Origin": SITE})
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["status"] == 429
    assert refused.headers["Access-Control-Allow-Origin"] == SITE


@pytest.fixture
def unlimited(monkeypatch):
    """No rate limits: every generated input reaches the form's own checks."""
    monkeypatch.setattr(limiter, "enabled", False)


FIELD_TEXT = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.text(alphabet=string.ascii_letters + "@.-_", max_size=40),
    st.lists(st.text(max_size=20), max_size=4),
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    email=FIELD_TEXT,
    first_name=FIELD_TEXT,
    language=FIELD_TEXT,
    topics=FIELD_TEXT,
    consent=st.one_of(FIELD_TEXT, st.booleans(), st.integers()),
    token=st.one_of(FIELD_TEXT, st.integers(), st.just("valid")),
    as_json=st.booleans(),
)
def test_no_input_makes_the_form_fail(
    app, unlimited, clock, haven, email, first_name, language, topics, consent, token, as_json
):
    client = app.test_client()
    fields = {
        "email": email,
        "first_name": first_name,
        "language": language,
        "topics": topics,
        "consent": consent,
        "form_token": form_token(client) if token == "valid" else token,
    }
    clock.advance(seconds=10)
    if as_json:
        response = client.post("/s", json=fields)
    else:
        data = {}
        for key, value in fields.items():
            if isinstance(value, bool | int):
                value = str(value)
            if value is not None:
                data[key] = value
        response = client.post("/s", data=data)
    assert response.status_code in (200, 202, 400)


def test_confirmation_links_are_redacted_from_request_logs():
    import logging

    from prefsvc.web.recipient.signup import RedactConfirmationLinks

    record = logging.LogRecord(
        "werkzeug", logging.INFO, "", 0, '"%s" 200', ("POST /s/confirm/abc.def-ghi HTTP/1.1",), None
    )
    RedactConfirmationLinks().filter(record)
    assert record.getMessage() == '"POST /s/confirm/[token] HTTP/1.1" 200'
