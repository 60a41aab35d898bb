"""Campaign control: schedule, pause, resume, cancel, test send."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from prefsvc.campaigns import campaigns, sending
from prefsvc.errors import CampaignStateError, InvalidInput
from prefsvc.mail import kit
from prefsvc.models import CampaignStatus, Delivery, DeliveryStatus
from prefsvc.queue import scheduler, tasks
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
TODAY = date(2026, 3, 10)


def _campaign(session, n=5):
    topic = make_topic(session)
    people = [make_contact(session, f"c{i}@example.org", topics=[topic]) for i in range(n)]
    campaign = make_campaign(session, topic)
    session.commit()
    return campaign, people


def test_paused_campaign_sends_nothing_until_resumed(
    session, settings, clock, outbox, run_campaign
):
    campaign, people = _campaign(session)
    campaigns.start(session, campaign, now=clock(), today=TODAY, years=5)
    campaigns.pause(session, campaign)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))

    result = sending.deliver(
        session, ids, settings=settings, now=clock, transport=kit.transport(settings)
    )

    assert result.sent == 0 and outbox() == []
    assert set(session.scalars(select(Delivery.status))) == {DeliveryStatus.QUEUED}
    campaigns.resume(session, campaign)
    session.commit()
    tasks.requeue(campaign.id)
    finished = run_campaign(campaign.id, launch=False)
    assert finished.status is CampaignStatus.SENT
    assert sorted(m["To"] for m in outbox()) == sorted(p.email for p in people)


def test_cancelled_campaign_drops_what_is_still_queued(session, clock):
    campaign, _ = _campaign(session)
    campaigns.start(session, campaign, now=clock(), today=TODAY, years=5)
    dropped = campaigns.cancel(session, campaign, now=clock())
    session.commit()
    assert dropped == 5
    report = campaigns.stats(session, campaign, today=TODAY, years=5)
    assert (report["status"], report["sent"], report["excluded"]) == (
        "cancelled",
        0,
        {"cancelled": 5},
    )
    with pytest.raises(CampaignStateError):
        campaigns.cancel(session, campaign, now=clock())


def test_scheduled_campaign_is_launched_by_the_scheduler_when_due(session, settings, clock):
    campaign, _ = _campaign(session, 2)
    campaigns.schedule(session, campaign, at=clock() + timedelta(hours=2), now=clock())
    session.commit()
    launched: list[int] = []

    early = scheduler.tick(
        session,
        settings,
        now=clock() + timedelta(hours=1),
        enqueue=lambda ids: None,
        launch=launched.append,
    )
    late = scheduler.tick(
        session,
        settings,
        now=clock() + timedelta(hours=2, minutes=1),
        enqueue=lambda ids: None,
        launch=launched.append,
    )

    assert early.launched == [] and late.launched == [campaign.id] == launched
    with pytest.raises(InvalidInput):
        campaigns.schedule(session, campaign, at=clock() - timedelta(hours=1), now=clock())


def test_test_send_reaches_the_address_and_is_not_counted(runner, session, outbox):
    campaign, _ = _campaign(session, 2)
    result = runner.invoke(
        args=["campaigns", "test-send", str(campaign.id), "--to", "Boss@Example.org"]
    )
    assert result.exit_code == 0, result.stderr
    [message] = outbox()
    assert message["To"] == "boss@example.org"
    assert message["Subject"].startswith("[TEST] ")
    assert session.scalars(select(Delivery)).all() == []
    assert campaigns.get(session, campaign.id).status is CampaignStatus.DRAFT


def test_cli_pause_of_a_draft_is_a_one_line_error(runner, session):
    campaign, _ = _campaign(session, 1)
    result = runner.invoke(args=["campaigns", "pause", str(campaign.id)])
    assert result.exit_code != 0
    assert result.stderr.strip() == f"Error: campaign {campaign.id} is draft, not sending"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_send_wait_draws_a_progress_bar_on_a_terminal_and_ends_at_100_percent(session, settings):
    """``campaigns send --wait`` with stderr on a terminal (a pty) shows the bar to 100 %."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    campaign, people = _campaign(session, 30)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PREFSVC_INSTANCE_PATH": str(settings.instance_path),
        "PREFSVC_DATABASE_URL": settings.database_url,
        "PREFSVC_MAIL_URL": settings.mail_url,
        "PREFSVC_SECRET_KEYS": ",".join(settings.secret_keys),
        "PREFSVC_SUPPRESSION_KEY": settings.suppression_key,
        "COLUMNS": "100",
    }
    terminal, child_side = pty.openpty()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefsvc"), "campaigns", "send", str(campaign.id)]
        + ["--wait"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=child_side,
    )
    os.close(child_side)
    seen = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child closed its end of the pty
            break
        if not chunk:
            break
        seen += chunk
    process.wait(timeout=60)
    os.close(terminal)

    assert process.returncode == 0, seen
    text = seen.decode(errors="replace")
    assert "30 recipients queued" in text
    assert "sending" in text and "100%" in text
    session.expire_all()
    assert campaigns.get(session, campaign.id).status is CampaignStatus.SENT
