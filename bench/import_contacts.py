"""Benchmark: ``importing.import_csv`` of a 10,000-row file on SQLite and PostgreSQL.

Prints rows/s for a first import (every contact created, two topics each) and for the same
file again (every contact found, nothing changed), each including the commit.

    .venv/bin/python bench/import_contacts.py [--rows 10000] [--backend sqlite postgresql]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def contacts_file(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(
        [
            "email",
            "first_name",
            "last_name",
            "language",
            "organisation",
            "role",
            "topics",
            "basis",
            "basis_date",
        ]
    )
    for i in range(rows):
        writer.writerow(
            [
                f"Person.{i}@Example.org",
                "Hélène",
                f"Peeters{i}",
                ("nl", "fr", "en")[i % 3],
                "Haven Logistiek NV",
                ("trainee", "customer", "teacher")[i % 3],
                "nieuwe-opleidingen|promoties",
                ("consent", "customer", "training")[i % 3],
                f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}",
            ]
        )
    return out.getvalue().encode("utf-8")


def run(backend: str, rows: int) -> tuple[float, float]:
    from flask_migrate import upgrade

    from prefsvc import create_app
    from prefsvc.extensions import db
    from prefsvc.people import importing, topics
    from prefsvc.queue import broker
    from prefsvc.settings import Settings

    workdir = Path(tempfile.mkdtemp(prefix="prefsvc-bench-import-"))
    db_name = None
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'prefsvc.db'}"
    else:
        db_name = f"prefsvc_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{db_name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db_name}"
    settings = Settings(
        instance_path=workdir,
        database_url=url,
        broker_url=None,
        mail_url=f"maildir:{workdir / 'outbox'}",
        base_url="https://news.example.org",
        secret_keys=("bench-key-0123456789abcdef",),
        suppression_key="bench-suppression-0123456789",
        mail_from="Opleidingen <news@example.org>",
    )
    data = contacts_file(rows)
    now, today = datetime.now(UTC), date.today()
    timings = []
    try:
        app = create_app(settings)
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            topics.create(db.session, "nieuwe-opleidingen", "Nieuwe opleidingen")
            topics.create(db.session, "promoties", "Promoties")
            db.session.commit()
            for expected in ("created", "unchanged"):
                t0 = time.perf_counter()
                result = importing.import_csv(
                    db.session,
                    data,
                    filename="bench.csv",
                    now=now,
                    today=today,
                    suppression_key=settings.suppression_key,
                    source="bench",
                )
                db.session.commit()
                timings.append(time.perf_counter() - t0)
                db.session.remove()
                db.engine.dispose()  # each `prefsvc contacts import` is a fresh process
                assert result.summary()[expected] == rows, result.summary()
            broker.queue().stop()
            db.session.remove()
            db.engine.dispose()
    finally:
        if db_name is not None:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument(
        "--backend", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    for backend in args.backend:
        first, again = run(backend, args.rows)
        print(
            f"{backend:<10} {args.rows} rows: first import {args.rows / first:7.0f} rows/s "
            f"({first:.2f} s) | same file again {args.rows / again:7.0f} rows/s ({again:.2f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
