"""Faults from outside, on real processes: a dead broker, workers killed with SIGKILL.

PostgreSQL and Redis, ``prefsvc worker`` and ``prefsvc scheduler`` started as subprocesses
the way they are deployed. Recovery times are printed (``-s``), not asserted: speed is for
``bench/faults.py``; what is asserted is what a user notices (nothing lost, duplicates within
the bound the README states).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prefsvc import create_app
from prefsvc.campaigns.delivery import WRITE_BACK_EVERY
from prefsvc.mail.tokens import Signer
from prefsvc.models import Campaign, CampaignStatus
from tests.factories import make_campaign, make_contact, make_topic
from tests.queue.test_workers import wait_until_sent, worker_env

DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens there: the broker is down


def _cli(settings, *args: str, **extra: str) -> subprocess.Popen:
    prefsvc = Path(sys.executable).parent / "prefsvc"
    return subprocess.Popen(
        [str(prefsvc), *args],
        env=worker_env(settings, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: killed as a whole below
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


@contextmanager
def _new_worker_and_scheduler(settings, threads: int, lease: int) -> Iterator[None]:
    """What the person on call starts after a crash, with a short lease so the test is quick.

    Jobs the dead processes had prefetched come back by Redis's own heartbeat (60 s) or,
    sooner, by the scheduler once nothing has moved for REQUEUE_AFTER_SECONDS."""
    lease_env = {"lease_seconds": str(lease), "requeue_after_seconds": "5"}
    worker = _cli(settings, "worker", "--processes", "1", "--threads", str(threads), **lease_env)
    tick = _cli(settings, "scheduler", "--interval", "1", **lease_env)
    try:
        yield
    finally:
        _stop(worker)
        _stop(tick)


def _csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("broker_kind", ["redis"])
def test_with_the_broker_down_nothing_is_refused_or_lost_and_all_arrives_once_it_returns(
    app, session, settings, clock, outbox
):
    """Issue 19: with the broker down the API's send answered 500 and left 1,997 rows queued for
    good, and sign-in links, unsubscribe-from-everything and preference-centre mail were
    logged as "could not queue" and never sent, while the person was told they were."""
    topic = make_topic(session)
    readers = [make_contact(session, f"r{i}@example.org", topics=[topic]) for i in range(20)]
    make_contact(session, "ana@example.org", topics=[topic])
    bob = make_contact(session, "bob@example.org", topics=[topic])
    cleo = make_contact(session, "cleo@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    from prefsvc.access import apikeys

    _, key = apikeys.create(session, "ops", "admin", now=clock())
    session.commit()
    web = create_app(settings.with_(broker_url=DEAD_BROKER), clock=clock).test_client()
    signer = Signer(settings.secret_keys)

    sent = web.post(
        f"/api/v1/campaigns/{campaign.id}/send", headers={"Authorization": f"Bearer {key}"}
    )
    assert sent.status_code == 202 and sent.get_json()["status"] == "sending"
    asked = web.post("/p", data={"csrf_token": _csrf(web, "/p"), "email": "ana@example.org"})
    assert asked.status_code == 200
    left = web.post(f"/u/{signer.unsubscribe_token(bob.public_id, topic.id)}/all")
    assert left.status_code == 200
    prefs = f"/p/{signer.preferences_token(cleo.public_id)}"
    saved = web.post(
        prefs, data={"csrf_token": _csrf(web, prefs), "action": "save", "language": "fr"}
    )
    assert saved.status_code == 303  # cleo left the topic (no box ticked): an acknowledgement
    clock.advance(minutes=2)
    health = web.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["jobs_waiting"] == 4  # one batch job and three notices
    assert outbox() == []

    started = time.monotonic()
    worker = _cli(settings, "worker", "--processes", "1", "--threads", "2")  # the broker is back
    try:
        wait_until_sent(session, campaign, timeout=60)
        deadline = time.monotonic() + 30
        while len(outbox()) < len(readers) + 1 + 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _stop(worker)
    print(f"\nbroker back: campaign and notices delivered in {time.monotonic() - started:.1f} s")

    received = Counter(m["To"] for m in outbox())
    # the campaign reaches the readers and ana (bob objected, cleo left before it went out)
    expected = Counter({r.email: 1 for r in readers} | {"ana@example.org": 2})
    expected.update({"bob@example.org": 1, "cleo@example.org": 1})
    assert received == expected  # sign-in link + campaign for ana; one acknowledgement each
    assert web.get("/healthz").get_json()["jobs_waiting"] == 0


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("broker_kind", ["redis"])
def test_sigkill_of_every_worker_process_a_new_worker_and_the_scheduler_finish_the_campaign(
    app, session, settings, smtp_server
):
    """Issue 19: a killed worker's rows waited STUCK_AFTER_SECONDS (15 minutes) in ``sending``.
    Now they are leases: a new worker and the scheduler take them over once the dead
    processes' heartbeats are LEASE_SECONDS old."""
    from prefsvc.queue.launcher import launch

    processes, threads, lease = 2, 2, 2
    smtp_server.handler.data_delay = 0.01
    topic = make_topic(session)
    people = [make_contact(session, f"k{i}@example.org", topics=[topic]) for i in range(300)]
    campaign = make_campaign(session, topic)
    session.commit()
    mail = settings.with_(mail_url=smtp_server.url)
    first = _cli(mail, "worker", "--processes", str(processes), "--threads", str(threads))
    try:
        launch(campaign.id)
        deadline = time.monotonic() + 60
        while len(smtp_server.received) < 90:  # ~30 %
            assert time.monotonic() < deadline, "no mail arrived"
            time.sleep(0.01)
        os.killpg(first.pid, signal.SIGKILL)  # the supervisor and every worker process
        killed_at = time.monotonic()
        first.communicate()
        with _new_worker_and_scheduler(mail, threads, lease):
            wait_until_sent(session, campaign, timeout=120)
            recovery = time.monotonic() - killed_at
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    counts = Counter(r.recipients[0] for r in smtp_server.received)
    duplicates = sum(n - 1 for n in counts.values())
    print(
        f"\nSIGKILL at 30 % of {len(people)}: finished {recovery:.1f} s later; "
        f"{duplicates} duplicates"
    )
    assert set(counts) == {p.email for p in people}
    assert duplicates <= processes * threads * WRITE_BACK_EVERY
    session.expire_all()
    assert session.get(Campaign, campaign.id).status is CampaignStatus.SENT


@pytest.mark.parametrize("backend", ["postgresql"])
def test_queued_rows_of_a_killed_in_process_demo_go_out_after_the_grace(
    app, session, settings, clock, outbox, run_campaign
):
    """Issue 19: after ``kill -9`` of the in-process demo, 2,523 rows stayed queued until a
    pause and resume by hand. The scheduler queues them again once nothing moved for
    REQUEUE_AFTER_SECONDS."""
    from prefsvc.extensions import db
    from prefsvc.models import OutboxJob
    from prefsvc.queue import broker, scheduler
    from prefsvc.queue.launcher import launch

    topic = make_topic(session)
    people = [make_contact(session, f"d{i}@example.org", topics=[topic]) for i in range(5)]
    campaign = make_campaign(session, topic)
    session.commit()
    queue = broker.queue()
    queue.jobs_held = lambda: None  # the demo is killed before its relay queues anything
    launch(campaign.id)
    session.execute(db.delete(OutboxJob))  # ...and the jobs it had queued died with it
    session.commit()

    clock.advance(seconds=settings.requeue_after_seconds + 1)
    report = scheduler.tick(session, settings, now=clock())
    del queue.jobs_held
    queue.jobs_held()  # the restarted demo's relay
    assert report.requeued == len(people)
    finished = run_campaign(campaign.id, launch=False)
    assert finished.status is CampaignStatus.SENT
    assert sorted(m["To"] for m in outbox()) == sorted(p.email for p in people)
    assert timedelta(0) < clock() - finished.queued_at


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("broker_kind", ["redis"])
def test_sigkill_of_the_worker_running_an_import_a_new_worker_and_the_scheduler_finish_it(
    app, session, settings
):
    """Issue 19: an import is a lease of its worker process, as a claimed delivery is. Killed
    in the middle of the file, the job is taken over once that process's heartbeat is
    LEASE_SECONDS old and goes on from its last committed chunk: every row once, and no
    chunk's contacts or ledger events written twice."""
    from prefsvc.extensions import db
    from prefsvc.models import ConsentEvent, Contact, ImportJob, ImportStatus
    from prefsvc.people.importing import CHUNK, jobs
    from prefsvc.queue import broker

    topic = make_topic(session, slug="promoties")
    rows, lease = 40 * CHUNK, 2
    path = jobs.folder(settings.instance_path) / jobs.new_stored_name()
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email;first_name;topics\n")
        out.writelines(f"i{n}@example.org;Amélie;{topic.slug}\n" for n in range(rows))
    job = jobs.queue(
        session,
        stored=path,
        filename="contacts.csv",
        dry_run=False,
        source="api",
        requested_by=None,
        now=datetime.now(UTC),
        max_bytes=settings.import_max_bytes,
    )
    session.commit()

    def progress() -> ImportJob:  # as the worker process last committed it
        return session.get(ImportJob, job.id, populate_existing=True)

    first = _cli(settings, "worker", "--processes", "1", "--threads", "2")
    try:
        broker.queue().jobs_held()
        deadline = time.monotonic() + 60
        while progress().rows_done < 4 * CHUNK:  # a few chunks committed, most of it to go
            assert time.monotonic() < deadline, "the import did not start"
            time.sleep(0.01)
        os.killpg(first.pid, signal.SIGKILL)  # the supervisor and its worker process
        killed_at = time.monotonic()
        first.communicate()
        stopped = progress()
        status, rows_at_kill, dead_owner = stopped.status, stopped.rows_done, stopped.owner
        assert status is ImportStatus.RUNNING and rows_at_kill < rows
        with _new_worker_and_scheduler(settings, 2, lease):
            deadline, taken_over = time.monotonic() + 120, None
            while (now := progress()).status is not ImportStatus.DONE:
                assert time.monotonic() < deadline, f"import stuck at {now.rows_done}"
                if taken_over is None and now.owner != dead_owner:
                    taken_over = time.monotonic() - killed_at
                time.sleep(0.1)
            recovery = time.monotonic() - killed_at
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    done = progress()
    print(
        f"\nSIGKILL of the import at {rows_at_kill} of {rows} rows: "
        f"taken over {taken_over or recovery:.1f} s and finished {recovery:.1f} s later"
    )
    assert (done.rows_done, done.created, done.rejected) == (rows, rows, 0)
    count = db.select(db.func.count())
    assert session.scalar(count.select_from(Contact)) == rows
    events = session.execute(
        db.select(ConsentEvent.kind, db.func.count()).group_by(ConsentEvent.kind)
    ).all()
    assert sorted((kind.value, n) for kind, n in events) == sorted(
        [("imported", rows), ("subscribed", rows)]
    )
    assert not path.exists()  # a finished import keeps no copy of the file
