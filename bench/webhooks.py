"""Benchmark: 10,000 signed webhook events delivered to a local receiver by `prefsvc worker`.

PostgreSQL + Redis; two worker processes (8 threads each) whose relays fan the held events
out and lease them, and whose ``deliver_webhooks`` jobs post them over kept-alive connections.
The receiver is a separate process (asyncio, HTTP/1.1 keep-alive) that checks every
signature with its own Standard Webhooks code and counts. The clock starts when the events
are committed (the workers are already up) and stops when the last delivery is recorded as
delivered in the database. Target (issue #20): >= 1,000 events/s.

    .venv/bin/python bench/webhooks.py [--events 10000] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from bench.campaign import PG_ADMIN, _seed, drop_queues, free_port, prefsvc_env  # noqa: E402


def receive(port: int, secret: str, counts, nice: int = 0) -> None:
    """Serve POSTs on ``port``: verify the signature, count, answer 200 (a child process)."""
    os.nice(nice)
    key = base64.b64decode(secret.removeprefix("whsec_"))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
                expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
                good = any(
                    hmac.compare_digest(s.partition(",")[2].encode(), expected)
                    for s in headers["webhook-signature"].split(" ")
                )
                counts[0 if good else 1] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_receiver(port: int, secret: str, *, nice: int = 0):
    """Start the receiver process; ``nice`` stands it back, as if it ran on another machine."""
    counts = multiprocessing.Array("l", 2, lock=False)
    process = multiprocessing.Process(
        target=receive, args=(port, secret, counts, nice), daemon=True
    )
    process.start()
    return process, counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    db_name = f"prefsvc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    workdir = Path(tempfile.mkdtemp(prefix="prefsvc-bench-"))
    env = prefsvc_env(db_name, workdir, free_port()) | {"PYTHONPATH": str(ROOT)}
    os.environ.update(env)
    processes: list[subprocess.Popen] = []
    receiver = None
    try:
        from flask_migrate import upgrade
        from sqlalchemy import func, select

        from prefsvc import create_app
        from prefsvc.consent import ledger
        from prefsvc.extensions import db
        from prefsvc.models import Contact, EventKind, WebhookDelivery, WebhookDeliveryStatus
        from prefsvc.webhooks import endpoints, events

        port = free_port()
        app = create_app()
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            _seed(db, args.events)
            endpoint = endpoints.create(
                db.session,
                f"http://127.0.0.1:{port}/hook",
                events.ALL,
                now=datetime.now(UTC),
            )
            db.session.commit()
            receiver, counts = start_receiver(port, endpoint.secret)
            contact_ids = list(db.session.scalars(select(Contact.id).order_by(Contact.id)))
            db.session.commit()
            processes.append(
                subprocess.Popen(
                    [str(ROOT / ".venv/bin/prefsvc"), "worker"]
                    + ["--processes", str(args.processes), "--threads", str(args.threads)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            time.sleep(4)  # let the worker processes boot

            # One ledger append of N unsubscribes: the outbox holds N events, one per contact.
            held = [ledger.NewEvent(c, EventKind.UNSUBSCRIBED, "bench", 1) for c in contact_ids]
            ledger.append_many(db.session, held, now=datetime.now(UTC))
            cpu_before = _cpu_by_role(processes[0], receiver, db_name)
            db.session.commit()
            start = time.perf_counter()
            delivered_query = (
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.status == WebhookDeliveryStatus.DELIVERED)
            )
            deadline = start + 600
            delivered = 0
            while time.perf_counter() < deadline:
                delivered = db.session.scalar(delivered_query)
                db.session.commit()
                if delivered >= len(held):
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            cpu_spent = {
                role: cpu.spent(cpu_before[role], after)
                for role, after in _cpu_by_role(processes[0], receiver, db_name).items()
            }
            attempts = db.session.scalar(select(func.sum(WebhookDelivery.attempts)))
            retried = db.session.execute(
                select(WebhookDelivery.last_response, func.count())
                .where(WebhookDelivery.attempts > 1)
                .group_by(WebhookDelivery.last_response)
            ).all()
            db.session.commit()
            db.engine.dispose()
        good, bad = counts[0], counts[1]
        print(
            f"{len(held)} events to 1 endpoint by {args.processes} worker processes x "
            f"{args.threads} threads: {delivered} delivered in {elapsed:.2f} s = "
            f"{delivered / elapsed:.0f} events/s | receiver got {good} correctly signed, "
            f"{bad} badly signed | attempts {attempts}"
            + (" (more than delivered: some were retried)" if attempts > delivered else "")
        )
        print(
            "  CPU per event delivered: "
            + ", ".join(
                f"{role} {seconds / max(delivered, 1) * 1e6:.0f} µs"
                for role, seconds in cpu_spent.items()
            )
        )
        if retried:
            print(f"  retried, by last answer: {retried}")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        if receiver is not None:
            receiver.terminate()
        drop_queues(env)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def _cpu_by_role(workers, receiver, db_name: str) -> dict[str, dict[int, float]]:
    """Snapshot the CPU seconds of the worker processes, their database and the receiver."""
    return {
        "workers": cpu.tree(workers.pid),
        "postgres": cpu.backends(PG_ADMIN, db_name),
        "receiver": cpu.tree(receiver.pid),
    }


if __name__ == "__main__":
    main()
