"""`prefsvc demo`: what a newcomer gets from `make demo`, minus the server."""

from __future__ import annotations

from prefsvc import create_app
from prefsvc.models import CampaignStatus


def test_demo_migrates_loads_sends_and_prints_links_to_click(settings, outbox):
    app = create_app(settings)
    runner = app.test_cli_runner()
    context = app.app_context()  # as `prefsvc` (a FlaskGroup) gives every command
    context.push()

    result = runner.invoke(args=["demo", "--no-serve"])

    assert result.exit_code == 0, result.output
    assert "campaign 1 sent to" in result.stdout
    assert "mail that came back: bounced, complained" in result.stdout
    for link in ("/outbox", "/p/", "/u/", "/admin/", "/p\n", "/api/v1/docs", "/healthz"):
        assert f"{settings.base_url}{link}" in result.stdout
    messages = outbox()
    assert len(messages) >= 40
    assert {m["Subject"] for m in messages} >= {"Nieuw: opleidingen voor het voorjaar"}
    assert all(m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in messages)
    html = messages[0].get_body(("html",)).get_content()
    assert '<meta name="viewport"' in html and settings.organisation_name in html
    assert 'class="preheader"' in html and settings.privacy_url in html

    from prefsvc.campaigns import campaigns
    from prefsvc.extensions import db
    from prefsvc.queue import broker

    try:
        assert campaigns.get(db.session, 1).status is CampaignStatus.SENT
        figures = campaigns.stats(db.session, campaigns.get(db.session, 1), today=None, years=5)
        assert (figures["bounced"], figures["complained"]) == (1, 1)
        again = runner.invoke(args=["demo", "--no-serve"])
        assert again.exit_code == 0
        assert "already loaded" in again.stdout
        assert len(outbox()) == len(messages)  # nothing sent twice
    finally:
        broker.queue().stop()
        db.session.remove()
        db.engine.dispose()
        context.pop()


def test_the_demo_scheduler_sends_a_scheduled_campaign_and_records_its_run(
    app, session, clock, outbox
):
    """Issue 18: scheduled campaigns never went out in the demo: no scheduler ran. The demo
    runs ``_scheduler_loop`` in a thread; one round of it launches what is due."""
    import threading
    from datetime import timedelta

    from prefsvc.campaigns import control
    from prefsvc.commands.ops import _scheduler_loop
    from prefsvc.queue import broker, scheduler
    from tests.factories import make_campaign, make_contact, make_topic

    topic = make_topic(session)
    make_contact(session, "ana@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    control.schedule(session, campaign, at=clock() + timedelta(minutes=5), now=clock())
    session.commit()
    clock.advance(minutes=6)
    stop = threading.Event()
    stop.set()  # one round, then return

    _scheduler_loop(app, 30.0, stop)
    broker.queue().join(timeout_ms=20_000)

    assert [m["To"] for m in outbox()] == ["ana@example.org"]
    session.expire_all()
    assert session.get(type(campaign), campaign.id).status is CampaignStatus.SENT
    assert scheduler.last_run(session) == clock()
