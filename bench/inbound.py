"""Benchmark: returned mail through ``prefsvc inbound serve``'s LMTP server, reports per second.

Makes a sent campaign of N deliveries (PostgreSQL by default, ``--sqlite`` for the embedded
store), then feeds N mixed reports from ``tests/inbound/corpus`` (DSNs from Postfix, Exim,
Exchange, Gmail; ARF complaints; auto-replies; ``mailto:`` unsubscribes; reports for mail we
never sent), each carrying the VERP token of a real delivery, over several LMTP connections, as
Postfix's ``lmtp`` transport would, to ``prefsvc inbound serve --processes N`` started as
deployed (``PREFSVC_*`` settings). Every report is classified, kept and acted on (ledger,
exclusions, acknowledgements). Prints reports/s, the server's CPU-seconds per report and
reports per CPU-second (less sensitive to a shared machine's load), the CPU of the PostgreSQL
backends serving it, and each server process's RSS at start, middle and end. Goal (issue 17):
at least 500 reports/s, memory flat. Measured with the defaults on the 2-core machine, nothing
else running: 618 and 538 reports/s, 1.83-2.12 ms server CPU and 0.58-0.66 ms PostgreSQL CPU
per report, RSS 100 -> 112 MB per process and flat after warm-up.

    .venv/bin/python bench/inbound.py [--reports 10000] [--connections 20] [--threads 10]
        [--processes 2] [--sqlite]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BOUNCE_DOMAIN = "bounces.example.org"
CORPUS = ROOT / "tests" / "inbound" / "corpus"
CORPUS_KEYS = ("corpus-secret-key-0123456789",)
# Reports whose envelope is the plain bounce mailbox: no token of ours in the envelope.
PLAIN_ENVELOPE = {"forged-verp.eml", "never-sent.eml", "yahoo-arf-abuse.eml"}


def corpus_templates(codec) -> list[tuple[str, bytes, list[str]]]:
    """Each corpus file with the corpus tokens it holds (to be swapped for a delivery's)."""
    from prefsvc.inbound.verp import DELIVERY, PURPOSES

    known = {
        codec.token(purpose, DELIVERY, ident): None
        for purpose in PURPOSES
        for ident in range(1, 400)
    }
    templates = []
    for path in sorted(CORPUS.glob("*.eml")):
        raw = path.read_bytes()
        found = [token for token in known if token.encode() in raw.lower()]
        templates.append((path.name, raw, found))
    return templates


def prepare(count: int, database_url: str, instance: Path):
    """Return the app and the ids of ``count`` sent deliveries of one campaign."""
    from sqlalchemy import insert, select, text

    from prefsvc import create_app
    from prefsvc.consent import ledger
    from prefsvc.extensions import db
    from prefsvc.models import Campaign, CampaignStatus, Contact, Delivery, DeliveryStatus, Topic
    from prefsvc.settings import Settings

    settings = Settings(
        instance_path=instance,
        database_url=database_url,
        broker_url=None,
        mail_url=f"maildir:{instance / 'outbox'}",
        base_url="https://news.example.org",
        secret_keys=("bench-key-0123456789abcdef",),
        suppression_key="bench-suppression-key-0123456789",
        mail_from="Opleidingen <news@example.org>",
        bounce_domain=BOUNCE_DOMAIN,
    )
    app = create_app(settings)
    with app.app_context():
        db.create_all()
        with db.engine.begin() as connection:  # as the migrations leave it
            if connection.execute(text("SELECT count(*) FROM ledger_head")).scalar() == 0:
                connection.execute(
                    text("INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, :genesis)"),
                    {"genesis": ledger.GENESIS},
                )
        session = db.session
        topic = Topic(slug="haven", name_nl="Haven", name_fr="Port", name_en="Port")
        session.add(topic)
        session.flush()
        campaign = Campaign(topic_id=topic.id, status=CampaignStatus.SENT)
        session.add(campaign)
        session.flush()
        anchor = date(2026, 1, 1)
        session.execute(
            insert(Contact),
            [
                {
                    "email": f"reader{n}@example.net",
                    "first_name": "Ana",
                    "last_name": "Peeters",
                    "window_anchor": anchor,
                    "basis_date": anchor,
                }
                for n in range(count)
            ],
        )
        ids = session.scalars(select(Contact.id).order_by(Contact.id)).all()
        session.execute(
            insert(Delivery),
            [
                {"campaign_id": campaign.id, "contact_id": i, "status": DeliveryStatus.SENT}
                for i in ids
            ],
        )
        session.commit()
        if db.engine.dialect.name == "postgresql":
            # Statistics, as autovacuum keeps them on a live database: without them the
            # planner takes 10,000 fresh deliveries for a few pages and scans them all.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("ANALYZE"))
        deliveries = session.scalars(select(Delivery.id).order_by(Delivery.id)).all()
        return app, settings, list(deliveries)


def build_reports(settings, deliveries: list[int]) -> list[tuple[bytes, str]]:
    """One (raw, envelope recipient) per delivery, cycling through the corpus."""
    from prefsvc.inbound import verp
    from prefsvc.inbound.verp import BOUNCES, DELIVERY, UNSUBSCRIBE

    corpus_codec = verp.codec(CORPUS_KEYS)
    codec = verp.codec(settings.secret_keys)
    templates = corpus_templates(corpus_codec)
    built = []
    for n, delivery_id in enumerate(deliveries):
        name, raw, tokens = templates[n % len(templates)]
        for old in tokens:
            purpose = UNSUBSCRIBE if corpus_codec.read(UNSUBSCRIBE, old) else BOUNCES
            new = codec.token(purpose, DELIVERY, delivery_id)
            raw = raw.replace(old.encode(), new.encode()).replace(
                old.upper().encode(), new.upper().encode()
            )
        raw = f"X-Bench-Seq: {n}\n".encode() + raw  # each report its own, as in real life
        purpose = UNSUBSCRIBE if name.startswith("unsubscribe") else BOUNCES
        if name in PLAIN_ENVELOPE:
            recipient = f"bounces@{BOUNCE_DOMAIN}"
        else:
            recipient = codec.address(purpose, DELIVERY, delivery_id, BOUNCE_DOMAIN)
        built.append((raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), recipient))
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument(
        "--connections",
        type=int,
        default=20,
        help="LMTP clients: Postfix's default_destination_concurrency_limit",
    )
    parser.add_argument("--threads", type=int, default=10, help="serve --threads")
    parser.add_argument("--processes", type=int, default=2, help="serve --processes")
    parser.add_argument("--sqlite", action="store_true", help="embedded SQLite, not PostgreSQL")
    options = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="prefsvc-bench-inbound-"))
    name = f"prefsvc_bench_inbound_{uuid.uuid4().hex[:8]}"
    if options.sqlite:
        database_url = f"sqlite:///{instance / 'prefsvc.db'}"
    else:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        app, settings, deliveries = prepare(options.reports, database_url, instance)
        with app.app_context():
            from prefsvc.extensions import db

            db.engine.dispose()
        reports = build_reports(settings, deliveries)
        port = _free_port()
        server = start_server(settings, port, options.threads, options.processes)
        try:
            print(
                f"server         prefsvc inbound serve --processes {options.processes} "
                f"--threads {options.threads} ({'SQLite' if options.sqlite else 'PostgreSQL'})"
            )
            run(reports, port, options.connections, server, None if options.sqlite else name)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    finally:
        if not options.sqlite:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server(settings, port: int, threads: int, processes: int) -> subprocess.Popen:
    """Start ``prefsvc inbound serve`` as deployed, configured by ``PREFSVC_*``; wait for it."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PREFSVC_INSTANCE_PATH": str(settings.instance_path),
        "PREFSVC_DATABASE_URL": settings.database_url,
        "PREFSVC_MAIL_URL": settings.mail_url,
        "PREFSVC_BASE_URL": settings.base_url,
        "PREFSVC_SECRET_KEYS": ",".join(settings.secret_keys),
        "PREFSVC_SUPPRESSION_KEY": settings.suppression_key,
        "PREFSVC_MAIL_FROM": settings.mail_from,
        "PREFSVC_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
    }
    env.pop("PREFSVC_BROKER_URL", None)
    command = [sys.executable, "-c", "from prefsvc.commands import main; main()", "inbound"]
    command += ["serve", "--port", str(port), "--threads", str(threads)]
    command += ["--processes", str(processes)]
    server = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while len(server_pids(server)) < processes or not _listening(port):
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the LMTP server did not start")
        time.sleep(0.2)
    return server


def server_pids(server: subprocess.Popen) -> list[int]:
    """The processes that serve: the children of the supervisor, or the one process."""
    try:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children] or [server.pid]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_of(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def backend_cpu(database: str | None) -> dict[int, float]:
    """CPU-seconds so far of each PostgreSQL backend connected to ``database``."""
    if database is None:
        return {}
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        pids = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchall()
    found = {}
    for (pid,) in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except OSError:  # gone meanwhile
            pass
    return found


def run(
    reports: list[tuple[bytes, str]], port: int, connections: int, server, database: str | None
) -> None:
    total = len(reports)
    done = 0
    lock = threading.Lock()
    pids = server_pids(server)
    marks = {"start": [rss_of(pid) for pid in pids]}
    outcomes: dict[str, int] = {}
    failures = []

    def client(share: list[tuple[bytes, str]]) -> None:
        nonlocal done
        lmtp = smtplib.LMTP("127.0.0.1", port)
        try:
            lmtp.ehlo()
            for raw, recipient in share:
                lmtp.mail("")
                lmtp.rcpt(recipient)
                code, reply = lmtp.data(raw)
                outcome = reply.decode().rpartition(": ")[2] if code == 250 else f"{code}"
                with lock:
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    done += 1
                    if done == total // 2:
                        marks["middle"] = [rss_of(pid) for pid in pids]
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))
        finally:
            lmtp.close()

    cpu_before = [cpu_seconds(pid) for pid in pids]
    backends_before = backend_cpu(database)
    started, client_started = time.perf_counter(), time.process_time()
    threads = [
        threading.Thread(target=client, args=(reports[i::connections],)) for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_started
    cpus = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
    marks["end"] = [rss_of(pid) for pid in pids]
    backends = backend_cpu(database)
    cpu = sum(cpus)
    print(f"reports        {done} of {total} over {connections} LMTP connections")
    print(f"elapsed        {elapsed:.1f} s")
    print(f"rate           {done / elapsed:.0f} reports/s (goal >= 500)")
    print(
        f"server CPU     {cpu:.1f} s over {len(pids)} processes "
        f"({', '.join(f'{c:.1f}' for c in cpus)}): {1000 * cpu / done:.2f} ms per report, "
        f"{done / cpu:.0f} reports per CPU-second"
    )
    print(f"client CPU     {client_cpu:.1f} s (the bench's LMTP clients)")
    if database is not None:
        # Backends opened during the run count whole; one closed before the end is missed.
        used = sum(cpu - backends_before.get(pid, 0.0) for pid, cpu in backends.items())
        print(
            f"PostgreSQL CPU {used:.1f} s in {len(backends)} backends: "
            f"{1000 * used / done:.2f} ms per report"
        )
    print(f"load average   {Path('/proc/loadavg').read_text().split()[0]} (machine shared)")
    for label, values in marks.items():
        print(f"RSS {label:<10} " + ", ".join(f"{v:.0f} MB" for v in values) + " per process")
    print("outcomes       " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    if failures:
        print("client failures: " + "; ".join(failures[:3]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
