"""``prefsvc webhooks``: an admin registers, lists, disables, enables, rotates and replays."""

from __future__ import annotations

import json

from prefsvc.webhooks import endpoints


def test_create_prints_the_secret_last_and_list_never_shows_it(runner, session):
    created = runner.invoke(
        args=[
            "webhooks",
            "create",
            "https://crm.example.org/hook",
            "--events",
            "contact.unsubscribed,contact.erased",
        ]
    )
    assert created.exit_code == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    listed = runner.invoke(args=["webhooks", "list", "--json"])
    [row] = json.loads(listed.stdout)
    assert row["events"] == ["contact.unsubscribed", "contact.erased"]
    assert secret not in listed.stdout


def test_an_unknown_event_or_a_bad_url_is_one_line_naming_the_field(runner):
    bad = runner.invoke(args=["webhooks", "create", "https://x.example", "--events", "nope"])
    assert bad.exit_code != 0
    assert "events: unknown event 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    url = runner.invoke(args=["webhooks", "create", "ftp://x.example"])
    assert url.exit_code != 0 and "url: must be an absolute" in url.stderr


def test_disable_enable_rotate_and_replay(runner, session):
    runner.invoke(args=["webhooks", "create", "https://crm.example.org/hook"])
    [endpoint] = endpoints.listing(session)
    old = endpoint.secret
    assert "disabled" in runner.invoke(args=["webhooks", "disable", str(endpoint.id)]).stdout
    assert "enabled" in runner.invoke(args=["webhooks", "enable", str(endpoint.id)]).stdout
    rotated = runner.invoke(args=["webhooks", "rotate-secret", str(endpoint.id)])
    session.expire_all()
    assert rotated.stdout.strip().splitlines()[-1] == endpoint.secret != old
    assert endpoint.previous_secret == old
    replay = runner.invoke(args=["webhooks", "replay", str(endpoint.id)])
    assert replay.stdout.strip() == "0 deliveries queued again"
    missing = runner.invoke(args=["webhooks", "disable", "999"])
    assert missing.exit_code != 0 and "no webhook endpoint 999" in missing.stderr
