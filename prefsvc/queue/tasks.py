"""Dramatiq set-up: one broker per app, an app-context middleware, and thin actors.

With no ``BROKER_URL`` the broker is Dramatiq's in-process StubBroker and a worker runs in a
thread of the same process, so the CLI and the demo need no service. With Redis or RabbitMQ,
``prefsvc worker`` processes on any machine consume the same queue.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from flask import Flask, current_app

from prefsvc.errors import TemporaryBatchFailure
from prefsvc.mail import kit
from prefsvc.settings import Settings

log = logging.getLogger(__name__)
EXTENSION_KEY = "prefsvc.queue.tasks"


class AppContext(Middleware):
    """Run every message inside the Flask app's context, and clean up after it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._local = threading.local()

    def before_process_message(self, broker: Any, message: Any) -> None:
        context = self.app.app_context()
        context.push()
        self._local.context = context

    def after_process_message(self, broker: Any, message: Any, *, result=None, exception=None):
        self._pop()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self._pop()

    def before_worker_thread_shutdown(self, broker: Any, thread: Any) -> None:
        with self.app.app_context():
            kit.close_thread_resources()

    def _pop(self) -> None:
        context = getattr(self._local, "context", None)
        if context is not None:
            self._local.context = None
            context.pop()


class OutboxRelay(Middleware):
    """Queue the notices held in the database (``notices.release``), from every worker process.

    A thread per process that runs a Dramatiq worker: it looks every ``INTERVAL`` seconds,
    or at once when woken (the in-process worker of the embedded default), and hands what it
    finds to the notice queue. Held notices therefore need a running worker, like all mail.
    """

    INTERVAL = 0.5

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._releasing = threading.Lock()  # join() releases inline: one release at a time
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prefsvc-outbox", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def release_all(self) -> int:
        """Queue everything held now; return how many notices were queued."""
        from prefsvc.extensions import db
        from prefsvc.mail import notices

        total = 0
        with self._releasing, self.app.app_context():
            try:
                while True:
                    released = notices.release(db.session, queue().send_notices)
                    db.session.commit()
                    total += released
                    if released < notices.RELEASE_BATCH:
                        return total
            finally:
                db.session.remove()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.release_all()
            except Exception:  # noqa: BLE001 - the rows stay held; the next round retries
                log.exception("could not queue the held notices")
            self._wake.wait(self.INTERVAL)
            self._wake.clear()


@dataclass
class TaskQueue:
    """The app's broker and actors, plus the in-process worker when there is no broker service."""

    settings: Settings
    broker: dramatiq.Broker
    actors: dict[str, dramatiq.Actor] = field(default_factory=dict)
    _worker: dramatiq.Worker | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def send_queue(self) -> str:
        return f"{self.settings.queue_prefix}send"

    def send_batch(self, delivery_ids: list[int]) -> None:
        self.actors["send_batch"].send(delivery_ids)
        self._ensure_inprocess_worker()

    @property
    def notice_queue(self) -> str:
        return f"{self.settings.queue_prefix}notices"

    def send_notices(self, held: list[tuple[str, int, dict[str, Any]]]) -> None:
        """Queue released notices, ``NOTICES_PER_JOB`` to a job."""
        for start in range(0, len(held), NOTICES_PER_JOB):
            chunk = [list(notice) for notice in held[start : start + NOTICES_PER_JOB]]
            self.actors["send_notices"].send(chunk)
        self._ensure_inprocess_worker()

    def send_notice(self, kind: str, contact_id: int, params: dict[str, Any] | None = None) -> None:
        """Queue one service message (see ``prefsvc.mail.notices``); ids only, never an address."""
        self.actors["send_notice"].send(kind, contact_id, params or {})
        self._ensure_inprocess_worker()

    def notices_held(self) -> None:
        """Say that notices were committed to the outbox: the in-process relay queues them now.

        With a broker service the relays of the worker processes find them within
        ``OutboxRelay.INTERVAL``; nothing is sent from here.
        """
        if isinstance(self.broker, StubBroker):
            self._ensure_inprocess_worker()
            self.relay.wake()

    @property
    def relay(self) -> OutboxRelay:
        return next(m for m in self.broker.middleware if isinstance(m, OutboxRelay))

    def _ensure_inprocess_worker(self) -> None:
        if not isinstance(self.broker, StubBroker):
            return
        with self._lock:
            if self._worker is None:
                threads = 1 if self.settings.database_url.startswith("sqlite") else 4
                self._worker = dramatiq.Worker(
                    self.broker, worker_threads=threads, worker_timeout=100
                )
                self._worker.start()

    def depth(self) -> int | None:
        """Return how many jobs wait in the send queue, or None if the broker cannot say."""
        try:
            if isinstance(self.broker, StubBroker):
                return self.broker.queues[self.send_queue].qsize()
            if self.settings.broker_url.startswith("redis"):
                return self.broker.client.llen(f"{self.broker.namespace}:{self.send_queue}")
            import pika

            connection = pika.BlockingConnection(pika.URLParameters(self.settings.broker_url))
            try:
                declared = connection.channel().queue_declare(self.send_queue, passive=True)
                return declared.method.message_count
            finally:
                connection.close()
        except Exception:  # noqa: BLE001 - a missing queue or broker just means "unknown"
            return None

    def join(self, timeout_ms: int | None = None) -> None:
        """Wait until the outbox and the in-process queue are empty (no-op with a real broker)."""
        if isinstance(self.broker, StubBroker):
            self.relay.release_all()  # queueing what it finds starts the in-process worker
        if isinstance(self.broker, StubBroker) and self._worker is not None:
            for name in (self.send_queue, self.notice_queue):
                if name in self.broker.queues:
                    self.broker.join(name, timeout=timeout_ms, fail_fast=False)
            self._worker.join()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        self.broker.close()


def make_broker(settings: Settings, app: Flask) -> dramatiq.Broker:
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=settings.batch_time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.retry_min_backoff_seconds * 1000,
            max_backoff=settings.retry_max_backoff_seconds * 1000,
        ),
        CurrentMessage(),
        AppContext(app),
        OutboxRelay(app),
    ]
    url = settings.broker_url
    if url is None:
        return StubBroker(middleware=middleware, fail_fast_default=False)
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=middleware, namespace=settings.queue_prefix + "dq")
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=middleware, confirm_delivery=True)


NOTICE_PRIORITY = 0
CAMPAIGN_PRIORITY = 10
NOTICES_PER_JOB = 50
NOTICE_RETRY_DELAY_MS = 5_000


def init_app(app: Flask) -> None:
    from prefsvc.settings import SETTINGS_KEY

    settings: Settings = app.extensions[SETTINGS_KEY]
    broker = make_broker(settings, app)
    queue = TaskQueue(settings=settings, broker=broker)
    # A worker picks the highest priority (lowest number) of the jobs it holds: service mail
    # (sign-in links, opt-out acknowledgements) must not wait behind a campaign's batches,
    # whose threads spend their time paced by the rate limits.
    actors = (
        (_send_batch, queue.send_queue, CAMPAIGN_PRIORITY),
        (_send_notice, queue.notice_queue, NOTICE_PRIORITY),
        (_send_notices, queue.notice_queue, NOTICE_PRIORITY),
    )
    for function, queue_name, priority in actors:
        name = function.__name__.removeprefix("_")
        queue.actors[name] = dramatiq.actor(
            function,
            broker=broker,
            actor_name=name,
            queue_name=queue_name,
            max_retries=settings.max_retries,
            priority=priority,
        )
    app.extensions[EXTENSION_KEY] = queue


def queue() -> TaskQueue:
    """Return the task queue of the app in context."""
    return current_app.extensions[EXTENSION_KEY]


def _send_batch(delivery_ids: list[int]) -> None:
    """Deliver one batch of deliveries (idempotent: anything not queued is skipped)."""
    from prefsvc.campaigns import sending
    from prefsvc.settings import current_settings

    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else 0
    try:
        result = sending.run_batch(
            delivery_ids, final_attempt=retries >= current_settings().max_retries
        )
    except TemporaryBatchFailure as exc:
        # Retried with exponential backoff by the Retries middleware, without an error log.
        raise dramatiq.Retry(str(exc), delay=exc.retry_after_ms) from None
    if result.deferred:
        # Held back by a rate limit: a new job (not a retry: no failure, no retry budget used),
        # queued before this message is acknowledged, so a crash here loses nothing.
        queue().actors["send_batch"].send_with_options(
            args=(result.deferred,), delay=int(result.defer_seconds * 1000) + 1
        )


def _send_notice(kind: str, contact_id: int, params: dict[str, Any]) -> None:
    """Build and send one service message; a temporary SMTP failure is retried with backoff."""
    from prefsvc import clock
    from prefsvc.extensions import db
    from prefsvc.mail import notice_kinds
    from prefsvc.mail.transport import PermanentFailure, TemporaryFailure
    from prefsvc.settings import current_settings

    try:
        notice_kinds.deliver(
            db.session,
            current_settings(),
            kind=kind,
            contact_id=contact_id,
            params=params,
            now=clock.now(),
        )
    except TemporaryFailure as exc:
        raise dramatiq.Retry(f"notice {kind}: {exc.code}", delay=NOTICE_RETRY_DELAY_MS) from None
    except PermanentFailure as exc:
        log.warning("notice %s for contact %s refused: %s", kind, contact_id, exc.code)
    finally:
        db.session.rollback()


def _send_notices(held: list[list[Any]]) -> None:
    """Send the notices a relay released together; one that fails goes on alone.

    One job per release instead of one per notice: the relay and the worker each make one
    broker round trip for up to ``NOTICES_PER_JOB`` acknowledgements. A notice that cannot be
    sent now is queued as its own ``send_notice`` job, with that job's retries and backoff,
    and the rest of the list goes on, so nobody already served is mailed twice.
    """
    for kind, contact_id, params in held:
        try:
            _send_notice(kind, contact_id, params)
        except Exception as exc:  # noqa: BLE001 - retried alone, with its own backoff
            log.warning(
                "notice %s for contact %s retried alone: %s", kind, contact_id, type(exc).__name__
            )
            queue().actors["send_notice"].send_with_options(
                args=(kind, contact_id, params), delay=NOTICE_RETRY_DELAY_MS
            )


def launch(campaign_id: int) -> int:
    """Fan a campaign out and queue its batches; return the audience size.

    Shared by the CLI, the API, the admin UI and the scheduler: the rows are committed before
    any job is queued, so a worker never looks for a delivery that is not there yet.
    """
    from prefsvc import clock
    from prefsvc.campaigns import campaigns
    from prefsvc.extensions import db
    from prefsvc.settings import current_settings

    settings = current_settings()
    session = db.session
    campaign = campaigns.get(session, campaign_id)
    size = campaigns.start(
        session,
        campaign,
        now=clock.now(),
        today=clock.today(),
        years=settings.marketing_window_years,
    )
    session.commit()
    task_queue = queue()
    for batch in campaigns.queued_batches(session, campaign_id, settings.batch_size):
        task_queue.send_batch(batch)
    log.info("campaign %s launched: audience=%d", campaign_id, size)
    return size


def requeue(campaign_id: int) -> int:
    """Queue a campaign's remaining deliveries again (after resume); return how many."""
    from prefsvc.campaigns import campaigns
    from prefsvc.extensions import db
    from prefsvc.settings import current_settings

    count = 0
    for batch in campaigns.queued_batches(db.session, campaign_id, current_settings().batch_size):
        queue().send_batch(batch)
        count += len(batch)
    return count
