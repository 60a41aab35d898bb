"""``prefsvc worker``: separate processes deliver what the app queued on a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefsvc.campaigns.delivery import WRITE_BACK_EVERY
from prefsvc.models import CampaignStatus
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases


def worker_env(settings, **extra: str) -> dict[str, str]:
    """The environment a ``prefsvc worker`` on another machine would be given."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PREFSVC_INSTANCE_PATH": str(settings.instance_path),
        "PREFSVC_DATABASE_URL": settings.database_url,
        "PREFSVC_BROKER_URL": settings.broker_url,
        "PREFSVC_MAIL_URL": settings.mail_url,
        "PREFSVC_BASE_URL": settings.base_url,
        "PREFSVC_SECRET_KEYS": ",".join(settings.secret_keys),
        "PREFSVC_SUPPRESSION_KEY": settings.suppression_key,
        "PREFSVC_MAIL_FROM": settings.mail_from,
        "PREFSVC_QUEUE_PREFIX": settings.queue_prefix,
        **{f"PREFSVC_{k.upper()}": v for k, v in extra.items()},
    }


def start_worker(settings, processes: int = 1, threads: int = 2, **extra: str) -> subprocess.Popen:
    prefsvc = Path(sys.executable).parent / "prefsvc"
    return subprocess.Popen(
        [str(prefsvc), "worker", "--processes", str(processes), "--threads", str(threads)],
        env=worker_env(settings, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_sent(session, campaign, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.expire_all()
        status = session.get(type(campaign), campaign.id).status
        session.commit()
        if status is CampaignStatus.SENT:
            return
        time.sleep(0.2)
    raise AssertionError("campaign was not sent in time")


@pytest.mark.parametrize("broker_kind", ["redis", "rabbitmq"])
def test_a_separate_worker_process_delivers_the_campaign(app, session, settings, outbox):
    from prefsvc.queue.launcher import launch

    topic = make_topic(session)
    people = [make_contact(session, f"w{i}@example.org", topics=[topic]) for i in range(12)]
    campaign = make_campaign(session, topic)
    session.commit()

    worker = start_worker(settings, log_format="json")
    try:
        launch(campaign.id)
        wait_until_sent(session, campaign)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert sorted(m["To"] for m in outbox()) == sorted(p.email for p in people)
    logged = [json.loads(line) for line in stderr.splitlines()]  # one JSON object per line
    assert any(e["message"].startswith("batch done: campaign=") for e in logged)
    assert {"ts", "level", "logger", "process", "message"} <= set(logged[0])
    assert "@" not in stderr and "/u/" not in stderr


@pytest.mark.parametrize("broker_kind", ["stub"])
def test_worker_refuses_to_start_without_a_broker(runner):
    result = runner.invoke(args=["worker"])
    assert result.exit_code != 0
    assert "PREFSVC_BROKER_URL is not set" in result.stderr


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


@pytest.mark.parametrize("broker_kind", ["rabbitmq"])
def test_killed_worker_mid_campaign_is_replaced_and_everyone_gets_the_mail(
    app, session, settings, smtp_server
):
    """SIGKILL a worker process mid-send: the campaign still reaches everyone, and the only
    duplicates are the messages its threads had in flight (sent, result not yet committed)."""
    from collections import Counter

    from prefsvc.queue.launcher import launch

    threads = 2
    smtp_server.handler.data_delay = 0.03
    topic = make_topic(session)
    people = [make_contact(session, f"k{i}@example.org", topics=[topic]) for i in range(150)]
    campaign = make_campaign(session, topic)
    session.commit()
    worker = start_worker(
        settings.with_(mail_url=smtp_server.url), threads=threads, lease_seconds="2"
    )
    try:
        launch(campaign.id)
        deadline = time.monotonic() + 60
        while len(smtp_server.received) < 20:
            assert time.monotonic() < deadline, "no mail arrived"
            time.sleep(0.02)
        victims = _children(worker.pid)
        assert victims, "the supervisor has no worker process"
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        killed_at = len(smtp_server.received)
        wait_until_sent(session, campaign, timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)

    counts = Counter(r.recipients[0] for r in smtp_server.received)
    assert set(counts) == {p.email for p in people}
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= threads * WRITE_BACK_EVERY, (duplicates, killed_at)


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("broker_kind", ["redis"])
def test_database_connections_dropped_mid_send_lose_and_duplicate_nothing_beyond_in_flight(
    app, session, settings, smtp_server
):
    """``pg_terminate_backend`` every connection of the worker twice mid-campaign: the worker
    reconnects, every subscriber gets the mail, and the only duplicates are messages that were
    in flight when the connection died."""
    from collections import Counter

    import psycopg
    from sqlalchemy import select
    from sqlalchemy.engine import make_url

    from prefsvc.models import Delivery, DeliveryStatus
    from prefsvc.queue.launcher import launch
    from tests.conftest import PG_ADMIN_URL

    threads = 2
    smtp_server.handler.data_delay = 0.03
    topic = make_topic(session)
    people = [make_contact(session, f"pg{i}@example.org", topics=[topic]) for i in range(150)]
    campaign = make_campaign(session, topic)
    session.commit()
    database = make_url(settings.database_url).database
    worker = start_worker(
        settings.with_(mail_url=smtp_server.url), threads=threads, lease_seconds="2"
    )
    terminated = []
    try:
        launch(campaign.id)
        session.commit()  # this test's own connection goes back to the pool, not killed mid-use
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            for after in (20, 80):
                deadline = time.monotonic() + 60
                while len(smtp_server.received) < after:
                    assert time.monotonic() < deadline, "mail stopped arriving"
                    time.sleep(0.02)
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                terminated.append(len(rows))
        wait_until_sent(session, campaign, timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)

    assert all(n > 0 for n in terminated), terminated
    counts = Counter(r.recipients[0] for r in smtp_server.received)
    assert set(counts) == {p.email for p in people}
    assert sum(n - 1 for n in counts.values()) <= len(terminated) * threads * WRITE_BACK_EVERY
    statuses = Counter(session.scalars(select(Delivery.status)))
    assert statuses == {DeliveryStatus.SENT: len(people)}
    assert worker.returncode == 0, stderr


def test_worker_app_sends_without_loading_the_web_api_or_admin(settings):
    """A worker builds its app without the API/admin stack (memory it would never use)."""
    probe = (
        "import sys; from prefsvc import create_app; app = create_app(web=False); "
        "assert 'send_batch' in app.extensions['prefsvc.queue.broker'].actors; "
        "print(sorted(m for m in ('flask_smorest', 'marshmallow', 'apispec', 'prefsvc.web.admin')"
        " if m in sys.modules))"
    )
    env = {k: v for k, v in worker_env(settings).items() if v is not None}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
