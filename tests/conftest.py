"""Shared fixtures: settings, app and database per backend, broker per backend, clock, SMTP server.

Storage tests marked ``all_databases`` run on SQLite and on PostgreSQL (127.0.0.1:5432, a fresh
database per test session); queue tests marked ``all_brokers`` run on the in-process broker,
Redis and RabbitMQ. A service that is down makes these tests fail, never skip.
"""

from __future__ import annotations

import mailbox
import os
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from prefsvc import create_app
from prefsvc.consent import ledger
from prefsvc.mail import notice_kinds
from prefsvc.mail.notices import Notice
from prefsvc.settings import Settings

PG_ADMIN_URL = os.environ.get("PREFSVC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PREFSVC_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("PREFSVC_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
STUB = "stub"
REDIS = "redis"
RABBITMQ = "rabbitmq"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "all_databases: run on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "all_brokers: run on in-process, Redis and RabbitMQ")


def _explicitly_parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "backend"):
        both = metafunc.definition.get_closest_marker("all_databases") is not None
        metafunc.parametrize("backend", [SQLITE, POSTGRESQL] if both else [SQLITE])
    if "broker_kind" in metafunc.fixturenames and not _explicitly_parametrized(
        metafunc, "broker_kind"
    ):
        every = metafunc.definition.get_closest_marker("all_brokers") is not None
        metafunc.parametrize("broker_kind", [STUB, REDIS, RABBITMQ] if every else [STUB])


# --- time -------------------------------------------------------------------------------


@dataclass
class FrozenClock:
    """A clock tests set and advance; the app asks it for ``now``."""

    current: datetime = field(default_factory=lambda: datetime(2026, 3, 10, 9, 30, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.current

    def set(self, value: datetime) -> None:
        assert value.tzinfo is not None
        self.current = value

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


# --- databases --------------------------------------------------------------------------

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@event.listens_for(Engine, "engine_connect")
def _remember_engine(connection) -> None:
    _engines.add(connection.engine)


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    """Close the pooled connections of every engine a test opened, its own apps' included.

    An app a test builds for one request (a dead broker, other settings) is never disposed by
    the ``app`` fixture; its open PostgreSQL connections would otherwise be closed by the
    garbage collector in some later test, as a ResourceWarning that fails that test.
    """
    yield
    for engine in list(_engines):
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    """Create a fresh PostgreSQL database for this test session (per xdist worker)."""
    name = f"prefsvc_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}", pytrace=False)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{url}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == SQLITE:
        return f"sqlite:///{tmp_path / 'prefsvc.db'}"
    return request.getfixturevalue("postgres_url")


# --- brokers ----------------------------------------------------------------------------


@pytest.fixture
def broker_url(broker_kind: str) -> str | None:
    if broker_kind == STUB:
        return None
    if broker_kind == REDIS:
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
        except redis.RedisError as exc:
            pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}", pytrace=False)
        return REDIS_URL
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except pika.exceptions.AMQPError as exc:
        pytest.fail(f"RabbitMQ is not reachable at {AMQP_URL}: {exc!r}", pytrace=False)
    return AMQP_URL


# --- the app ----------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str, broker_url: str | None) -> Settings:
    instance = tmp_path / "instance"
    return Settings(
        instance_path=instance,
        database_url=database_url,
        broker_url=broker_url,
        mail_url=f"maildir:{instance / 'outbox'}",
        base_url="https://news.example.org",
        secret_keys=("test-key-old-0123456789", "test-key-new-0123456789"),
        suppression_key="test-suppression-key-0123456789",
        mail_from="Opleidingen <news@example.org>",
        queue_prefix=f"t{uuid.uuid4().hex[:10]}-",
        testing=True,
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock):
    from prefsvc.extensions import db
    from prefsvc.queue import broker

    app = create_app(settings, clock=clock)
    with app.app_context():
        _fresh_schema(db)
        yield app
        broker.queue().stop()
        _delete_broker_queues(settings)
        db.session.remove()
        db.engine.dispose()


def _fresh_schema(db) -> None:
    """Create tables on SQLite; empty the shared PostgreSQL database between tests."""
    if db.engine.dialect.name == "sqlite":
        db.create_all()
        return
    db.create_all()
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with db.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # As after the migrations: the ledger head row is in place from the start.
        connection.execute(
            text("INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, :genesis)"),
            {"genesis": ledger.GENESIS},
        )


def _delete_broker_queues(settings: Settings) -> None:
    """Leave no test queues behind in the shared Redis and RabbitMQ servers."""
    if settings.broker_url is None:
        return
    queues = [f"{settings.queue_prefix}{name}" for name in ("send", "notices", "webhooks")]
    if settings.broker_url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(settings.broker_url)
        keys = list(client.scan_iter(f"{settings.queue_prefix}*"))
        if keys:
            client.delete(*keys)
        return
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    channel = connection.channel()
    for queue in queues:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    connection.close()


@pytest.fixture
def session(app):
    from prefsvc.extensions import db

    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner; ``result.stdout`` and ``result.stderr`` are kept apart (click >= 8.2)."""
    return app.test_cli_runner()


# --- mail -------------------------------------------------------------------------------


@pytest.fixture
def outbox(settings: Settings):
    """Return a function that reads every message in the Maildir outbox, parsed."""

    def read() -> list[EmailMessage]:
        path = settings.mail_url.removeprefix("maildir:")
        if not all((Path(path) / sub).is_dir() for sub in ("tmp", "new", "cur")):
            return []  # not there yet, or a worker is creating it right now
        box = mailbox.Maildir(path, create=False)
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(box.get_bytes(key)) for key in sorted(box.keys())]

    return read


@pytest.fixture
def greeting_kind(monkeypatch):
    """A notice kind of the tests' own: "Hallo <first name>", the code given in its params."""

    def build(session, contact, settings, params, *, now):
        return Notice(subject=f"Hallo {contact.first_name}", text=f"Code {params['code']}\n")

    monkeypatch.setitem(notice_kinds.KINDS, "test-greeting", build)
    return "test-greeting"


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest):
    """A real SMTP server (aiosmtpd) on a free local port that records what it receives.

    Parametrise it indirectly with keyword arguments for ``RecordingSMTPServer``, e.g.
    ``{"smtputf8": True}``.
    """
    from tests.smtp import RecordingSMTPServer

    with RecordingSMTPServer(**getattr(request, "param", {})) as server:
        yield server


# --- running campaigns ------------------------------------------------------------------


@pytest.fixture
def run_campaign(app):
    """Return a function that launches a campaign and waits until every delivery is final.

    With the in-process broker the app's own worker thread delivers; with Redis or RabbitMQ a
    real Dramatiq worker consumes the real broker's queue, as a ``prefsvc worker`` would.
    """
    import time

    import dramatiq

    from prefsvc.extensions import db
    from prefsvc.models import Campaign, CampaignStatus
    from prefsvc.queue import broker
    from prefsvc.queue.launcher import launch as launch_now

    workers: list[dramatiq.Worker] = []

    def run(campaign_id: int, *, timeout: float = 60.0, launch: bool = True) -> Campaign:
        queue = broker.queue()
        if launch:
            launch_now(campaign_id)
        if queue.settings.broker_url is not None and not workers:
            worker = dramatiq.Worker(queue.broker, worker_threads=2, worker_timeout=100)
            worker.start()
            workers.append(worker)
        deadline = time.monotonic() + timeout
        while True:
            db.session.expire_all()
            campaign = db.session.get(Campaign, campaign_id)
            db.session.commit()
            if campaign.status is not CampaignStatus.SENDING:
                return campaign
            if time.monotonic() > deadline:
                raise AssertionError(f"campaign {campaign_id} still sending after {timeout}s")
            time.sleep(0.05)

    yield run
    for worker in workers:
        worker.stop()
