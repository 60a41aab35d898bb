"""Benchmark: a campaign through PostgreSQL + Redis + `prefsvc worker` into Postfix's smtp-sink.

Prints, for each size: prefsvc msg/s, a plain-smtplib baseline's msg/s (2 processes, one reused
connection each, pre-built messages of the same size), their ratio, the fan-out time, and the
peak RSS of each worker process. Targets (issue #5): ratio >= 0.7 (>= 0.5 with DKIM RSA-2048),
fan-out of 100,000 < 5 s, worker RSS < 150 MB.

    .venv/bin/python bench/campaign.py --contacts 10000 100000 [--dkim] [--threads 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.newsletter import newsletter_html  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(port: int) -> subprocess.Popen:
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(sink).exists():
        sys.exit("smtp-sink not found: apt-get install postfix (make test installs it)")
    process = subprocess.Popen(
        [sink, "-u", "nobody", f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    sys.exit("smtp-sink did not start")


def _baseline_child(port: int, count: int, message: bytes) -> None:
    client = smtplib.SMTP("127.0.0.1", port)
    for i in range(count):
        client.sendmail("news@example.org", [f"r{i}@example.org"], message)
    client.quit()


def prefsvc_message_size() -> int:
    """Return the size of one real prefsvc message for the benchmark newsletter."""
    from prefsvc.mail.messages import MessageBuilder
    from prefsvc.mail.rendering import RecipientContext, compile_variant, render

    variant = compile_variant(
        subject="Nieuwe opleidingen",
        html=newsletter_html(),
        text=None,
        language="nl",
        topic_name="Benchmark",
    )
    rendered = render(
        variant,
        contact=RecipientContext("c1@example.org", "Naam1", "Peeters", None, "nl"),
        unsubscribe_url="https://news.example.org/u/" + "x" * 60,
        preferences_url="https://news.example.org/p/" + "x" * 50,
    )
    _, message = MessageBuilder(
        from_addr="N <news@example.org>", msgid_domain="example.org"
    ).campaign_message(
        to="c1@example.org",
        rendered=rendered,
        unsubscribe_url="https://news.example.org/u/x",
        list_id="B <b.example.org>",
        now=datetime.now(UTC),
    )
    return len(message)


def baseline(port: int, total: int, size: int) -> float:
    """Plain smtplib: 2 processes, one reused connection each, pre-built messages of ``size``."""
    body = (b"x" * 75 + b"\r\n") * (size // 77)
    message = (
        b"From: news@example.org\r\nTo: r@example.org\r\nSubject: baseline\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    )
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_baseline_child, args=(port, total // 2, message)) for _ in range(2)
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return total / (time.perf_counter() - start)


def make_dkim_key(directory: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def prefsvc_env(db_name: str, workdir: Path, sink_port: int, *, dkim: bool = False) -> dict:
    """The PREFSVC_* environment of the app, the workers and (bench/unsubscribe) gunicorn."""
    env = {
        "PATH": os.environ["PATH"],
        "PREFSVC_INSTANCE_PATH": str(workdir),
        "PREFSVC_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db_name}",
        "PREFSVC_BROKER_URL": REDIS,
        "PREFSVC_MAIL_URL": f"smtp://127.0.0.1:{sink_port}",
        "PREFSVC_BASE_URL": "https://news.example.org",
        "PREFSVC_SECRET_KEYS": "bench-key-0123456789abcdef",
        "PREFSVC_SUPPRESSION_KEY": "bench-suppression-0123456789",
        "PREFSVC_MAIL_FROM": "Opleidingen <news@example.org>",
        "PREFSVC_QUEUE_PREFIX": f"bench{uuid.uuid4().hex[:6]}-",
    }
    if dkim:
        env |= {
            "PREFSVC_DKIM_DOMAIN": "example.org",
            "PREFSVC_DKIM_SELECTOR": "bench",
            "PREFSVC_DKIM_KEY_FILE": str(make_dkim_key(workdir)),
        }
    return env


def run_one(contacts: int, threads: int, dkim: bool, sink_port: int) -> dict[str, float]:
    db_name = f"prefsvc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    workdir = Path(tempfile.mkdtemp(prefix="prefsvc-bench-"))
    env = prefsvc_env(db_name, workdir, sink_port, dkim=dkim)
    os.environ.update(env)
    worker = None
    try:
        from flask_migrate import upgrade

        from prefsvc import create_app
        from prefsvc.campaigns import campaigns
        from prefsvc.extensions import db
        from prefsvc.models import Campaign, CampaignStatus
        from prefsvc.queue import broker

        app = create_app()
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            _seed(db, contacts)
            campaign = campaigns.create(
                db.session,
                topic_slug="bench",
                variants={
                    "nl": (
                        "Nieuwe opleidingen voor {{ contact.first_name }}",
                        newsletter_html(),
                        None,
                    )
                },
            )
            db.session.commit()
            campaign_id = campaign.id

            worker = subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/prefsvc"),
                    "worker",
                    "--processes",
                    "2",
                    "--threads",
                    str(threads),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(4)  # let both worker processes boot and connect

            now = datetime.now(UTC)
            t0 = time.perf_counter()
            campaigns.start(db.session, campaign, now=now, today=date.today(), years=5)
            db.session.commit()
            fan_out = time.perf_counter() - t0
            queue = broker.queue()
            for batch in campaigns.queued_batches(db.session, campaign_id, 100):
                queue.send_batch(batch)
            queued = time.perf_counter() - t0

            while True:  # poll the campaign's status only: counting 100k rows costs CPU too
                db.session.expire_all()
                status = db.session.get(Campaign, campaign_id).status
                db.session.commit()
                if status is CampaignStatus.SENT:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - t0
            report = campaigns.stats(
                db.session, campaigns.get(db.session, campaign_id), today=date.today(), years=5
            )
            rss = _worker_rss(worker.pid)
            db.engine.dispose()
            queue.broker.close()
        return {
            "contacts": contacts,
            "sent": report["sent"],
            "failed": report["failed"],
            "fan_out_s": fan_out,
            "queue_s": queued - fan_out,
            "send_s": elapsed,
            "msg_per_s": report["sent"] / elapsed,
            "rss_mb": rss,
        }
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        drop_queues(env)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def drop_queues(env: dict[str, str]) -> None:
    """Delete this run's Redis keys (its queues, and any notices still waiting in them)."""
    import redis

    client = redis.Redis.from_url(env["PREFSVC_BROKER_URL"])
    keys = list(client.scan_iter(match=f"{env['PREFSVC_QUEUE_PREFIX']}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _seed(db, contacts: int) -> None:
    """Insert the topic, contacts and subscriptions with COPY (set-up, not measured)."""
    from prefsvc.models import Topic

    db.session.add(Topic(slug="bench", name="Benchmark"))
    db.session.commit()
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(
            "COPY contacts (public_id, email, first_name, last_name, language, window_anchor, "
            "status, created_at, updated_at) FROM STDIN"
        ) as copy:
            stamp = datetime.now(UTC).replace(tzinfo=None)
            for i in range(contacts):
                copy.write_row(
                    (
                        uuid.uuid4().hex[:16],
                        f"c{i}@example.org",
                        f"Naam{i}",
                        "Peeters",
                        ("nl", "fr", "en")[i % 3],
                        date.today(),
                        "active",
                        stamp,
                        stamp,
                    )
                )
        cur.execute(
            "INSERT INTO subscriptions (contact_id, topic_id, status, created_at, updated_at) "
            "SELECT id, 1, 'subscribed', now(), now() FROM contacts"
        )
        raw.commit()
    finally:
        raw.close()


def _worker_rss(supervisor_pid: int) -> float:
    """Return the largest peak RSS (VmHWM, MB) among the supervisor's worker children."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(supervisor_pid) and "VmHWM" in fields:
            peaks.append(int(fields["VmHWM"].split()[0]) / 1024)
    return max(peaks) if peaks else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--dkim", action="store_true", help="sign with an RSA-2048 DKIM key")
    args = parser.parse_args()
    port = free_port()
    sink = start_sink(port)
    try:
        size = prefsvc_message_size()
        print(
            f"newsletter HTML {len(newsletter_html().encode()) / 1024:.1f} KB, 42 CSS rules; "
            f"message with text+html parts {size / 1024:.1f} KB; "
            f"DKIM: {'RSA-2048' if args.dkim else 'off'}"
        )
        for n in args.contacts:
            # The machine is shared: measure the baseline just before and just after, average.
            before = baseline(port, n, size)
            result = run_one(n, args.threads, args.dkim, port)
            after = baseline(port, n, size)
            base = (before + after) / 2
            print(
                f"{n:>7} contacts: prefsvc {result['msg_per_s']:7.0f} msg/s "
                f"(sent {result['sent']}, failed {result['failed']}, {result['send_s']:.1f} s) | "
                f"smtplib baseline {base:7.0f} msg/s ({before:.0f} before, {after:.0f} after) | "
                f"ratio {result['msg_per_s'] / base:.2f} | "
                f"fan-out {result['fan_out_s']:.2f} s, queueing {result['queue_s']:.2f} s | "
                f"peak worker RSS {result['rss_mb']:.0f} MB",
                flush=True,
            )
    finally:
        sink.terminate()
        sink.wait(10)


if __name__ == "__main__":
    main()
