"""A new web process is warmed before it takes requests, and the warm-up changes nothing."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from prefsvc import create_app
from prefsvc.mail.tokens import Signer
from prefsvc.models import ConsentEvent, OutboxJob, Subscription, SubscriptionStatus
from prefsvc.web.warmup import warm_up
from tests.factories import make_contact, make_topic

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _counts(session) -> tuple[int, int, int]:
    session.expire_all()
    return (
        session.scalar(select(func.count()).select_from(ConsentEvent)),
        session.scalar(select(func.count()).select_from(OutboxJob)),
        session.scalar(
            select(func.count()).where(Subscription.status == SubscriptionStatus.SUBSCRIBED)
        ),
    )


@pytest.mark.all_databases
def test_warm_up_changes_nothing_and_the_first_one_click_still_works(app, session, settings):
    topic = make_topic(session, slug="haven", name="Haven & Logistiek")
    ana = make_contact(session, "ana@example.org", topics=[topic])
    session.commit()
    before = _counts(session)

    warm_up(app, connections=4)

    assert _counts(session) == before
    link = f"/u/{Signer(settings.secret_keys).unsubscribe_token(ana.public_id, topic.id)}"
    response = app.test_client().post(link, data=ONE_CLICK)
    assert response.status_code == 200
    assert _counts(session)[2] == before[2] - 1


def test_the_first_pages_after_warm_up_compile_no_template(app, session, settings, monkeypatch):
    topic = make_topic(session, slug="haven", name="Haven & Logistiek")
    ana = make_contact(session, "ana@example.org", topics=[topic], language="fr")
    session.commit()
    warm_up(app, connections=2)
    compiled: list[str | None] = []
    compile_template = app.jinja_env.compile

    def counting(source, name=None, *args, **kwargs):
        compiled.append(name)
        return compile_template(source, name, *args, **kwargs)

    monkeypatch.setattr(app.jinja_env, "compile", counting)
    signer = Signer(settings.secret_keys)
    client = app.test_client()
    assert client.post(f"/u/{signer.unsubscribe_token(ana.public_id, topic.id)}").status_code == 200
    assert client.get(f"/p/{signer.preferences_token(ana.public_id)}").status_code == 200
    assert client.get("/u/not-a-token").status_code == 404
    # Mail templates are the sending workers' (here in-process): not the web's to warm.
    assert [name for name in compiled if not name.startswith("mail/")] == []


@pytest.mark.parametrize("backend", ["postgresql"])
def test_warm_up_opens_a_connection_per_thread(app):
    from prefsvc.extensions import db

    db.session.remove()
    db.engine.dispose()
    warm_up(app, connections=4)
    db.session.remove()  # the fixture's app context lent its session to the warm-up requests
    assert db.engine.pool.checkedin() == 4


def test_a_database_down_at_start_up_does_not_stop_the_process(settings, caplog):
    down = create_app(settings.with_(database_url="postgresql+psycopg://postgres@127.0.0.1:1/x"))
    with caplog.at_level(logging.WARNING, logger="prefsvc.web.warmup"):
        warm_up(down, connections=2)
    assert "database unavailable at start-up" in caplog.text
    response = down.test_client().post("/u/whatever", data=ONE_CLICK)
    assert response.status_code in {404, 503}
