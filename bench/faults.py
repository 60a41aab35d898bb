"""Benchmark: recovery after faults, on PostgreSQL + Redis with real `prefsvc` processes.

1. SIGKILL of every worker process (the supervisor and its children) at ~30 % of a
   2,000-contact campaign; a new `prefsvc worker` and `prefsvc scheduler` are started at once.
   Run with the defaults as deployed (LEASE_SECONDS=30, REQUEUE_AFTER_SECONDS=60, scheduler
   every 60 s) and with short ones (5 s / 10 s / every 5 s).
2. The broker down during the fan-out: the campaign is launched while the web side's broker
   URL points at a dead port; workers start on the real broker 10 s later.
3. SIGKILL of the worker running an import (60,000 rows) at ~30 % of the file; a new worker
   and the scheduler (as deployed: every 60 s, LEASE_SECONDS=30) are started at once.

Prints the time from the fault (or from the broker's return) to the campaign being sent, and
the duplicates (messages delivered twice, counted in the Maildir by recipient); for the
import, the time until the job was taken over and until it was done, and the contacts and
ledger events (each row's once).

    .venv/bin/python bench/faults.py [--contacts 2000] [--rate 200]
        [--only defaults|short|broker|import] [--rows 60000]
"""

from __future__ import annotations

import argparse
import mailbox
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import BytesHeaderParser
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.campaign import PG_ADMIN, _seed, drop_queues, prefsvc_env  # noqa: E402

PREFSVC = str(ROOT / ".venv/bin/prefsvc")
DEAD_BROKER = "redis://127.0.0.1:1/0"


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [PREFSVC, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def delivered(maildir: Path) -> int:
    new = maildir / "new"
    return len(os.listdir(new)) if new.exists() else 0


def duplicates(maildir: Path) -> tuple[int, int]:
    """Return (distinct recipients, messages beyond one per recipient)."""
    box = mailbox.Maildir(maildir, create=False)
    parser = BytesHeaderParser()
    counts = Counter(parser.parsebytes(box.get_bytes(key))["To"] for key in box.keys())
    return len(counts), sum(n - 1 for n in counts.values())


@contextmanager
def scratch() -> Iterator[tuple[Path, dict[str, str], list[subprocess.Popen]]]:
    """A database, a folder and queue names of a scenario's own; yields (folder, environment,
    processes started) and stops the processes and drops all three afterwards."""
    db_name = f"prefsvc_faults_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    workdir = Path(tempfile.mkdtemp(prefix="prefsvc-faults-"))
    env = prefsvc_env(db_name, workdir, 0)
    processes: list[subprocess.Popen] = []
    try:
        yield workdir, env, processes
    finally:
        for process in processes:
            if process.poll() is None:
                stop(process)
        drop_queues(env)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def scenario(name: str, contacts: int, rate: int, extra: dict[str, str], interval: int) -> None:
    with scratch() as (workdir, env, processes):
        maildir = workdir / "outbox"
        env |= {"PREFSVC_MAIL_URL": f"maildir:{maildir}", "PREFSVC_RATE_LIMIT": str(rate)}
        env |= {f"PREFSVC_{k}": v for k, v in extra.items()}
        broker_down = name == "broker"
        web_env = env | ({"PREFSVC_BROKER_URL": DEAD_BROKER} if broker_down else {})
        os.environ.update(web_env)
        from flask_migrate import upgrade

        from prefsvc import create_app
        from prefsvc.campaigns import campaigns
        from prefsvc.extensions import db
        from prefsvc.models import Campaign, CampaignStatus
        from prefsvc.queue import launcher

        app = create_app()
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            _seed(db, contacts)
            campaign = campaigns.create(
                db.session,
                topic_slug="bench",
                variants={"nl": ("Nieuws voor {{ contact.first_name }}", "<p>Hallo</p>", None)},
            )
            db.session.commit()
            campaign_id = campaign.id

            def sent() -> bool:
                db.session.expire_all()
                status = db.session.get(Campaign, campaign_id).status
                db.session.commit()
                return status is CampaignStatus.SENT

            if broker_down:
                t0 = time.perf_counter()
                launcher.launch(campaign_id)  # no error: the jobs wait in the outbox
                launched = time.perf_counter() - t0
                time.sleep(10)
                assert delivered(maildir) == 0
                back = time.perf_counter()
                processes.append(start(["worker"], env))
                while not sent():
                    time.sleep(0.1)
                took = time.perf_counter() - back
                who, twice = duplicates(maildir)
                print(
                    f"broker down at fan-out: launch answered in {launched:.2f} s; after the "
                    f"broker returned the campaign was sent in {took:.1f} s "
                    f"({who}/{contacts} recipients, {twice} duplicates)"
                )
                return
            first = start(["worker"], env)
            processes.append(first)
            time.sleep(4)
            launcher.launch(campaign_id)
            while delivered(maildir) < contacts * 0.3:
                time.sleep(0.01)
            os.killpg(first.pid, signal.SIGKILL)
            killed = time.perf_counter()
            at = delivered(maildir)
            first.wait()
            processes.append(start(["worker"], env))
            processes.append(start(["scheduler", "--interval", str(interval)], env))
            while not sent():
                time.sleep(0.2)
            took = time.perf_counter() - killed
            who, twice = duplicates(maildir)
            print(
                f"SIGKILL of every worker at {at}/{contacts} ({name}: {extra or 'defaults'}, "
                f"scheduler every {interval} s): campaign sent {took:.1f} s later; "
                f"{who}/{contacts} recipients, {twice} duplicates "
                f"({100 * twice / contacts:.2f} %)"
            )
            db.engine.dispose()


def import_scenario(rows: int, interval: int) -> None:
    with scratch() as (workdir, env, processes):
        env["PREFSVC_MAIL_URL"] = f"maildir:{workdir / 'out'}"
        os.environ.update(env)
        from datetime import UTC, datetime

        from flask_migrate import upgrade

        from bench.import_contacts import write_file
        from prefsvc import create_app
        from prefsvc.extensions import db
        from prefsvc.models import ConsentEvent, Contact, ImportJob, ImportStatus
        from prefsvc.people import topics
        from prefsvc.people.importing import jobs
        from prefsvc.queue import broker
        from prefsvc.settings import current_settings

        app = create_app()
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            for slug in ("nieuwe-opleidingen", "promoties"):
                topics.create(db.session, slug=slug, names={"nl": slug})
            path = jobs.folder(current_settings().instance_path) / jobs.new_stored_name()
            written = write_file(path, max(1, rows * 120 // 1_000_000))  # ~115 bytes a row
            job_id = jobs.queue(
                db.session,
                stored=path,
                filename="contacts.csv",
                dry_run=False,
                source="api",
                requested_by=None,
                now=datetime.now(UTC),
                max_bytes=1 << 40,
            ).id
            db.session.commit()

            def job() -> ImportJob:  # as the worker process last committed it
                return db.session.get(ImportJob, job_id, populate_existing=True)

            first = start(["worker"], env)
            processes.append(first)
            broker.queue().jobs_held()
            while job().rows_done < written * 0.3:
                time.sleep(0.05)
            os.killpg(first.pid, signal.SIGKILL)
            killed = time.perf_counter()
            at, dead = job().rows_done, job().owner
            first.wait()
            processes.append(start(["worker"], env))
            processes.append(start(["scheduler", "--interval", str(interval)], env))
            taken = None
            while (now := job()).status is not ImportStatus.DONE:
                if taken is None and now.owner != dead:
                    taken = time.perf_counter() - killed
                time.sleep(0.2)
            took = time.perf_counter() - killed
            contacts = db.session.scalar(db.select(db.func.count()).select_from(Contact))
            events = db.session.scalar(db.select(db.func.count()).select_from(ConsentEvent))
            print(
                f"SIGKILL of the import worker at {at}/{written} rows (defaults, scheduler "
                f"every {interval} s): taken over {taken or took:.1f} s later, done "
                f"{took:.1f} s later; {contacts}/{written} contacts, {events} ledger events "
                f"({events - 3 * written:+d} against one import and two topics per row)"
            )
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=200, help="RATE_LIMIT, messages/s")
    parser.add_argument("--only", choices=("defaults", "short", "broker", "import"))
    parser.add_argument("--rows", type=int, default=60_000, help="rows of the killed import")
    args = parser.parse_args()
    runs = {
        "defaults": ({}, 60),
        "short": ({"LEASE_SECONDS": "5", "REQUEUE_AFTER_SECONDS": "10"}, 5),
        "broker": ({}, 60),
    }
    for name, (extra, interval) in runs.items():
        if args.only in (None, name):
            scenario(name, args.contacts, args.rate, extra, interval)
    if args.only in (None, "import"):
        import_scenario(args.rows, 60)


if __name__ == "__main__":
    main()
