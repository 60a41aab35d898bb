"""Benchmark: the contact directory at the demo's size and beyond, on SQLite and PostgreSQL.

Adds the demo's generated contacts (``prefsvc.demo.add_crowd``), then prints the time of the
bulk insert, of a page of the list (first and last page, each filter, each sort) and of the
CSV export of every contact. Nothing is asserted: these are figures to read.

    .venv/bin/python bench/directory.py [--contacts 10000] [--backend sqlite postgresql]
"""

from __future__ import annotations

import argparse
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


def run(backend: str, contacts: int) -> None:
    from flask_migrate import upgrade

    from prefsvc import create_app, demo
    from prefsvc.extensions import db
    from prefsvc.people import directory, topics
    from prefsvc.queue import broker
    from prefsvc.settings import Settings

    workdir = Path(tempfile.mkdtemp(prefix="prefsvc-bench-directory-"))
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
    now, today = datetime.now(UTC), date.today()
    try:
        app = create_app(settings)
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            for slug, names, descriptions in demo.TOPICS:
                topics.create(db.session, slug, names=names, descriptions=descriptions)
            t0 = time.perf_counter()
            demo.add_crowd(db.session, now=now, today=today, count=contacts)
            db.session.commit()
            print(f"{backend:<10} insert {contacts} contacts: {time.perf_counter() - t0:.2f} s")
            cases = {
                "no filter, by date added": directory.Filters(),
                "search 'peeters'": directory.Filters(q="peeters"),
                "topic promoties, subscribed": directory.Filters(
                    topic="promoties", status="subscribed"
                ),
                "may be mailed today": directory.Filters(status="mailable"),
                "window ends within 30 days": directory.Filters(window_days=30),
                "bounced, by name": directory.Filters(bounced=True, sort="name"),
                "by name, descending": directory.Filters(sort="name", descending=True),
            }
            for label, filters in cases.items():
                for page in (1, 200):
                    t0 = time.perf_counter()
                    found = directory.find(
                        db.session, filters, today=today, years=5, page=page, per_page=50
                    )
                    took = (time.perf_counter() - t0) * 1000
                    print(
                        f"{backend:<10} {label:<30} page {page:>3}: {took:6.1f} ms "
                        f"({found.total} match)"
                    )
                db.session.rollback()
            t0 = time.perf_counter()
            size = sum(
                len(chunk)
                for chunk in directory.csv_text(
                    directory.export_rows(db.session, directory.Filters(), today=today, years=5)
                )
            )
            took = time.perf_counter() - t0
            print(f"{backend:<10} CSV export of every contact: {took:.2f} s, {size / 1e6:.1f} MB")
            broker.queue().stop()
            db.session.remove()
            db.engine.dispose()
    finally:
        if db_name is not None:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument(
        "--backend", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    for backend in args.backend:
        run(backend, args.contacts)


if __name__ == "__main__":
    main()
