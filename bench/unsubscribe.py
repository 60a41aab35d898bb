"""Benchmark: one-click unsubscribes at a steady rate while a campaign is being sent.

PostgreSQL + Redis; the app under gunicorn on 127.0.0.1 only; two `prefsvc worker` processes
sending a campaign into Postfix's smtp-sink, held to ``--campaign-rate`` msg/s (RATE_LIMIT) so
that the campaign goes on during the whole run. The load is open-loop: request ``i`` is due at
``start + i / rate`` and its latency is counted from then, so a slow server cannot hide its
queueing. The run is bounded: ``rate × seconds`` requests, then it stops by itself.

Prints p50/p95/p99 latency and errors, then checks in the database that every unsubscribe
was recorded (once, however often it was posted) and that nobody whose unsubscribe had been
answered before their batch was claimed got the mail. Targets (issue #5): p99 < 50 ms,
0 errors, 0 lost, 0 mailed after unsubscribing.

``--webhook-endpoints N`` registers N endpoints (every event), each at a receiver process the
bench starts (checking signatures, at nice 10: the CRM's machine, not ours), so every
unsubscribe also holds N webhook deliveries; ``--with-and-without`` runs the load twice, on
fresh databases, without endpoints and then with N, and prints both (issue #20: p99 < 50 ms
at 200/s with two endpoints).

    .venv/bin/python bench/unsubscribe.py [--rate 200] [--seconds 60] [--contacts 10000]
    .venv/bin/python bench/unsubscribe.py --webhook-endpoints 2 --with-and-without
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from bench.campaign import (  # noqa: E402
    PG_ADMIN,
    _seed,
    drop_queues,
    free_port,
    prefsvc_env,
    start_sink,
)
from bench.newsletter import newsletter_html  # noqa: E402

HOST = "127.0.0.1"


def wait_for_http(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"gunicorn did not answer on {HOST}:{port}")


class Load:
    """Open-loop POSTs over keep-alive connections, from one thread; results kept per request.

    One thread and a selector rather than a thread per connection: the load generator shares
    the machine's two cores with the server it measures, and threads contending for the GIL
    cost it several times the CPU. A request waits for a free connection (opening up to
    ``clients``), and its latency counts from when it was due, whatever it waited for.
    """

    BODY = b"List-Unsubscribe=One-Click"

    def __init__(self, port: int, paths: list[str], rate: float, clients: int) -> None:
        self.port, self.paths, self.rate, self.clients = port, paths, rate, clients
        self.latencies: list[float] = [float("nan")] * len(paths)
        self.answered_at: list[datetime | None] = [None] * len(paths)  # wall clock, UTC
        self.errors: list[str] = []
        self.cpu_seconds = 0.0

    def _request(self, i: int) -> bytes:
        return (
            f"POST {self.paths[i]} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(self.BODY)}\r\n\r\n"
        ).encode() + self.BODY

    def _open(self, selector: selectors.BaseSelector) -> socket.socket:
        connection = socket.create_connection((HOST, self.port))
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(connection, selectors.EVENT_READ, None)
        return connection

    def run(self) -> float:
        selector = selectors.DefaultSelector()
        idle: list[socket.socket] = []
        busy: dict[socket.socket, list] = {}  # connection -> [request, due, buffer, retried]
        waiting: deque[tuple[int, float, bool]] = deque()
        cpu_start = time.process_time()
        start = time.perf_counter() + 0.1
        next_i, total = 0, len(self.paths)

        def send(i: int, due: float, retried: bool) -> None:
            connection = idle.pop() if idle else self._open(selector)
            busy[connection] = [i, due, b"", retried]
            connection.sendall(self._request(i))

        def fail(connection: socket.socket, reason: str) -> None:
            i, due, _, retried = busy.pop(connection)
            selector.unregister(connection)
            connection.close()
            if retried:
                self.errors.append(f"request {i}: {reason}")
            else:  # a keep-alive connection the server closed: once more on a new one
                waiting.appendleft((i, due, True))

        while next_i < total or waiting or busy:
            now = time.perf_counter()
            while next_i < total and start + next_i / self.rate <= now:
                waiting.append((next_i, start + next_i / self.rate, False))
                next_i += 1
            while waiting and (idle or len(busy) < self.clients):
                send(*waiting.popleft())
            timeout = max(0.0, start + next_i / self.rate - now) if next_i < total else 1.0
            # Waiting requests can only go when a response frees a connection: a read event.
            for key, _ in selector.select(timeout):
                connection = key.fileobj
                if connection not in busy:  # an idle connection closed by the server
                    selector.unregister(connection)
                    idle.remove(connection)
                    connection.close()
                    continue
                try:
                    chunk = connection.recv(65536)
                except OSError as exc:
                    fail(connection, type(exc).__name__)
                    continue
                if not chunk:
                    fail(connection, "connection closed")
                    continue
                state = busy[connection]
                state[2] += chunk
                head, sep, body = state[2].partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if length is None or len(body) < int(length.group(1)):
                    continue
                i, due = state[0], state[1]
                del busy[connection]
                self.latencies[i] = time.perf_counter() - due
                status = int(head.split(b" ", 2)[1])
                if status == 200:
                    self.answered_at[i] = datetime.now(UTC)
                else:
                    self.errors.append(f"request {i}: HTTP {status}")
                if re.search(rb"(?im)^connection:\s*close", head):
                    selector.unregister(connection)
                    connection.close()
                else:
                    idle.append(connection)
        for connection in idle:
            connection.close()
        self.cpu_seconds = time.process_time() - cpu_start
        return time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(v for v in values if v == v)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200, help="POSTs per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--campaign-rate", default="170/s", help="RATE_LIMIT of the campaign")
    parser.add_argument("--port", type=int, default=5005, help="gunicorn port on 127.0.0.1")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument(
        "--gunicorn-class", default="gthread", choices=["sync", "gthread"], help="worker class"
    )
    parser.add_argument("--gunicorn-threads", type=int, default=4, help="gthread only")
    parser.add_argument("--clients", type=int, default=32, help="client connections")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="niceness of the sending workers (0: same priority as the web processes)",
    )
    parser.add_argument(
        "--webhook-endpoints",
        type=int,
        default=0,
        help="register this many webhook endpoints (every event), a local receiver each",
    )
    parser.add_argument(
        "--with-and-without",
        action="store_true",
        help="run twice: without webhook endpoints, then with --webhook-endpoints of them",
    )
    args = parser.parse_args()
    counts = [0, args.webhook_endpoints] if args.with_and_without else [args.webhook_endpoints]
    results = [(count, run(args, count)) for count in counts]
    count_posts = int(args.rate * args.seconds)
    if len(results) > 1:
        print("one-click POST latency, without and with webhook endpoints:")
        for count, figures in results:
            print(
                f"  {count} endpoints: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms, "
                f"p99 {figures['p99']:.1f} ms, errors {figures['errors']}; CPU ms per POST: "
                + ", ".join(f"{r} {s / count_posts * 1000:.2f}" for r, s in figures["cpu"].items())
            )


def run(args: argparse.Namespace, webhook_endpoints: int) -> dict[str, float]:
    """Run the load once on a fresh database; print and return its latency figures (ms)."""

    total = int(args.rate * args.seconds)
    sink_port = free_port()
    sink = start_sink(sink_port)
    db_name = f"prefsvc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    workdir = Path(tempfile.mkdtemp(prefix="prefsvc-bench-"))
    env = prefsvc_env(db_name, workdir, sink_port) | {
        "PREFSVC_BASE_URL": f"http://{HOST}:{args.port}",
        "PREFSVC_RATE_LIMIT": args.campaign_rate,
        # All the load comes from one loopback client: lift the per-client limits of the
        # recipient pages so that what is measured is the server, not Flask-Limiter's 429.
        "PREFSVC_RATE_LIMIT_ONE_CLICK_CLIENT": "1000000 per minute",
        "PREFSVC_RATE_LIMIT_TOKEN_CLIENT": "1000000 per minute",
        "PYTHONPATH": str(ROOT),  # the workers too run this checkout's code
    }
    os.environ.update(env)
    processes: list[subprocess.Popen] = []
    try:
        from flask_migrate import upgrade
        from sqlalchemy import func, select

        from prefsvc import create_app
        from prefsvc.campaigns import campaigns
        from prefsvc.extensions import db
        from prefsvc.mail.tokens import Signer
        from prefsvc.models import (
            Campaign,
            CampaignStatus,
            ConsentEvent,
            Contact,
            Delivery,
            DeliveryStatus,
            EventKind,
            OutboxJob,
            Subscription,
            SubscriptionStatus,
        )
        from prefsvc.queue import broker
        from prefsvc.queue.launcher import launch
        from prefsvc.settings import current_settings

        app = create_app()
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            _seed(db, args.contacts)
            receiver = _webhook_endpoints(db, webhook_endpoints)
            campaign = campaigns.create(
                db.session,
                topic_slug="bench",
                variants={"nl": ("Nieuwe opleidingen", newsletter_html(), None)},
            )
            db.session.commit()
            campaign_id, topic_id = campaign.id, campaign.topic_id
            signer = Signer(current_settings().secret_keys)
            people = db.session.execute(select(Contact.id, Contact.public_id)).all()
            db.session.commit()
            # Half the contacts leave, each link posted twice (repeat-safe), in random order.
            random.seed(5)
            leavers = random.sample(people, min(len(people), max(1, total // 2)))
            targets = [leavers[i % len(leavers)] for i in range(total)]
            random.shuffle(targets)
            paths = [f"/u/{signer.unsubscribe_token(p.public_id, topic_id)}" for p in targets]

            server_env = env | {"PYTHONPATH": str(ROOT)}
            processes.append(
                subprocess.Popen(
                    [
                        str(ROOT / ".venv/bin/gunicorn"),
                        "-w",
                        str(args.gunicorn_workers),
                        "-k",
                        args.gunicorn_class,
                        "--threads",
                        str(args.gunicorn_threads),
                        "-b",
                        f"{HOST}:{args.port}",
                        "--keep-alive",
                        "30",
                        "wsgi:app",
                    ],
                    env=server_env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            processes.append(
                subprocess.Popen(
                    ["nice", "-n", str(args.worker_nice), str(ROOT / ".venv/bin/prefsvc")]
                    + ["worker", "--processes", "2", "--threads", "4"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_for_http(args.port)
            time.sleep(3)  # let the worker processes boot

            audience = launch(campaign_id)
            db.session.commit()
            load = Load(args.port, paths, args.rate, args.clients)
            cpu_before = _cpu_by_role(processes, receiver, db_name)
            elapsed = load.run()
            cpu_during = {
                role: cpu.spent(before, after)
                for (role, before), after in zip(
                    cpu_before.items(),
                    _cpu_by_role(processes, receiver, db_name).values(),
                    strict=True,
                )
            }
            hooks_during = _webhooks_delivered(db)
            sending_when_load_ended = db.session.get(Campaign, campaign_id).status
            dramatiq_broker = broker.queue().broker
            notices_waiting = dramatiq_broker.client.llen(
                f"{dramatiq_broker.namespace}:{broker.queue().notice_queue}"
            ) + db.session.scalar(select(func.count()).select_from(OutboxJob))
            db.session.commit()
            sent_during_load = db.session.scalar(
                select(func.count()).where(
                    Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.SENT
                )
            )
            db.session.commit()

            deadline = time.monotonic() + 600
            while True:
                db.session.expire_all()
                status = db.session.get(Campaign, campaign_id).status
                db.session.commit()
                if status is not CampaignStatus.SENDING or time.monotonic() > deadline:
                    break
                time.sleep(0.2)

            # --- checks in the database ---------------------------------------------------
            first_answer: dict[int, datetime] = {}
            for target, answered in zip(targets, load.answered_at, strict=True):
                if answered is not None and (
                    target.id not in first_answer or answered < first_answer[target.id]
                ):
                    first_answer[target.id] = answered
            leaver_ids = [p.id for p in leavers]
            unsubscribed = set(
                db.session.scalars(
                    select(Subscription.contact_id).where(
                        Subscription.topic_id == topic_id,
                        Subscription.status == SubscriptionStatus.UNSUBSCRIBED,
                    )
                )
            )
            events = dict(
                db.session.execute(
                    select(ConsentEvent.contact_id, func.count())
                    .where(
                        ConsentEvent.kind == EventKind.UNSUBSCRIBED,
                        ConsentEvent.topic_id == topic_id,
                        ConsentEvent.channel == "one-click",
                    )
                    .group_by(ConsentEvent.contact_id)
                ).all()
            )
            lost = [c for c in first_answer if c not in unsubscribed or not events.get(c)]
            doubled = [c for c in first_answer if events.get(c, 0) > 1]
            mailed_after = 0
            mailed_before_answer = 0
            for contact_id, status, claimed_at in db.session.execute(
                select(Delivery.contact_id, Delivery.status, Delivery.claimed_at).where(
                    Delivery.campaign_id == campaign_id, Delivery.contact_id.in_(leaver_ids)
                )
            ):
                answered = first_answer.get(contact_id)
                if status is DeliveryStatus.SENT and answered is not None:
                    if claimed_at > answered:
                        mailed_after += 1  # their batch was claimed after the 200 OK: a bug
                    else:
                        mailed_before_answer += 1  # their batch went first: allowed
            report = campaigns.stats(
                db.session, campaigns.get(db.session, campaign_id), today=date_today(), years=5
            )
            webhooks_line = _webhook_figures(db, receiver)
            db.session.commit()
            db.engine.dispose()
            broker.queue().broker.close()

        ok = [v for v, a in zip(load.latencies, load.answered_at, strict=True) if a is not None]
        print(
            f"{total} one-click POSTs at {args.rate:.0f}/s for {args.seconds:.0f} s "
            f"(took {elapsed:.1f} s) against gunicorn "
            f"({args.gunicorn_workers} {args.gunicorn_class} workers"
            + (f" x {args.gunicorn_threads} threads" if args.gunicorn_class == "gthread" else "")
            + ") "
            f"while a {audience}-recipient campaign was sending at {args.campaign_rate} "
            f"by workers at nice {args.worker_nice} "
            f"(sent during the load: {sent_during_load}, {sent_during_load / elapsed:.0f} msg/s; "
            f"still sending when the load ended: "
            f"{sending_when_load_ended is CampaignStatus.SENDING}; "
            f"acknowledgements still held or queued then: {notices_waiting})"
        )
        figures = {
            "p50": percentile(ok, 50) * 1000,
            "p95": percentile(ok, 95) * 1000,
            "p99": percentile(ok, 99) * 1000,
            "errors": len(load.errors),
        }
        print(
            f"  latency ({webhook_endpoints} webhook endpoints) p50 {figures['p50']:.1f} ms, "
            f"p95 {figures['p95']:.1f} ms, p99 {figures['p99']:.1f} ms, "
            f"max {max(ok, default=float('nan')) * 1000:.1f} ms | errors {len(load.errors)}"
            + (f" (first: {load.errors[0]})" if load.errors else "")
            + f" | load generator CPU {load.cpu_seconds / total * 1000:.2f} ms per request"
        )
        per_second: dict[int, list[float]] = {}
        for i, latency in enumerate(load.latencies):
            if latency == latency:
                per_second.setdefault(int(i / args.rate), []).append(latency)
        worst = sorted(per_second.items(), key=lambda item: -percentile(item[1], 99))[:5]
        print(
            "  slowest seconds (second: p99): "
            + ", ".join(f"{second}: {percentile(v, 99) * 1000:.0f} ms" for second, v in worst)
        )
        print(
            f"  unsubscribed contacts {len(first_answer)}, lost {len(lost)}, "
            f"recorded twice in the ledger (two POSTs at once) {len(doubled)} | "
            f"mailed after their unsubscribe was answered {mailed_after}, "
            f"mailed before they unsubscribed (batch claimed first) {mailed_before_answer} | "
            f"campaign {report['status']}: "
            f"sent {report['sent']}, excluded {report['excluded']}"
        )
        if webhooks_line:
            print(webhooks_line)
        print(
            "  CPU during the load, ms per POST: "
            + ", ".join(
                f"{role} {seconds / total * 1000:.2f}" for role, seconds in cpu_during.items()
            )
            + (
                f" | webhooks delivered during the load {hooks_during}"
                f" ({hooks_during / total:.2f} per POST)"
                if receiver
                else ""
            )
        )
        figures["cpu"] = cpu_during
        return figures
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        sink.terminate()
        sink.wait(10)
        drop_queues(env)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def _webhook_endpoints(db, count: int):
    """Register ``count`` endpoints (every event), each at a receiver process of its own."""
    if not count:
        return None
    from bench.webhooks import start_receiver
    from prefsvc.webhooks import endpoints, events

    receivers = []
    for _ in range(count):
        port = free_port()
        endpoint = endpoints.create(
            db.session, f"http://{HOST}:{port}/hook", events.ALL, now=datetime.now(UTC)
        )
        db.session.commit()
        receivers.append(start_receiver(port, endpoint.secret, nice=10))  # the CRM's machine
    return receivers


def _cpu_by_role(processes, receiver, db_name: str) -> dict[str, dict[int, float]]:
    """Snapshot the CPU seconds of gunicorn, the workers, their database and the receivers."""
    return {
        "gunicorn": cpu.tree(processes[0].pid),
        "workers": cpu.tree(processes[1].pid),  # the campaign's sending and the webhooks
        "postgres": cpu.backends(PG_ADMIN, db_name),
        "receivers": {
            pid: seconds
            for process, _counts in receiver or ()
            for pid, seconds in cpu.tree(process.pid).items()
        },
    }


def _webhooks_delivered(db) -> int:
    from sqlalchemy import func, select

    from prefsvc.models import WebhookDelivery, WebhookDeliveryStatus

    delivered = db.session.scalar(
        select(func.count()).where(WebhookDelivery.status == WebhookDeliveryStatus.DELIVERED)
    )
    db.session.commit()
    return delivered


def _webhook_figures(db, receiver) -> str | None:
    """Say how many webhook deliveries the unsubscribes made and how many had arrived."""
    if receiver is None:
        return None
    from sqlalchemy import func, select

    from prefsvc.models import WebhookDelivery, WebhookDeliveryStatus

    deadline = time.monotonic() + 120
    while True:
        rows = dict(
            db.session.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            ).all()
        )
        db.session.commit()
        if not rows.get(WebhookDeliveryStatus.PENDING) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for process, _counts in receiver:
        process.terminate()
    good = sum(counts[0] for _process, counts in receiver)
    bad = sum(counts[1] for _process, counts in receiver)
    return (
        f"  webhooks: {len(receiver)} endpoints; deliveries {sum(rows.values())}, delivered "
        f"{rows.get(WebhookDeliveryStatus.DELIVERED, 0)}; receivers got {good} correctly "
        f"signed, {bad} badly signed"
    )


def date_today():
    from datetime import date

    return date.today()


if __name__ == "__main__":
    main()
