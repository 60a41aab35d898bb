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
