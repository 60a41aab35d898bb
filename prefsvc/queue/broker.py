"""Dramatiq set-up: one broker per app, its middleware (app context, outbox relay), the queue.

With no ``BROKER_URL`` the broker is Dramatiq's in-process StubBroker and a worker runs in a
thread of the same process, so the CLI and the demo need no service. With Redis or RabbitMQ,
``prefsvc worker`` processes on any machine consume the same queue. The actors themselves, and
``init_app`` that declares them on the app's broker, are in ``actors``.
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

from prefsvc.extensions import db
from prefsvc.mail import kit, notices
from prefsvc.queue.webhook_relay import QUEUE as WEBHOOK_QUEUE
from prefsvc.queue.webhook_relay import WebhookRelay
from prefsvc.settings import Settings

log = logging.getLogger(__name__)
EXTENSION_KEY = "prefsvc.queue.broker"
NOTICES_PER_JOB = 50


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
    def webhook_queue(self) -> str:
        return f"{self.settings.queue_prefix}{WEBHOOK_QUEUE}"

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
            import pika  # only a RabbitMQ installation needs it, and only here

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
            next(m for m in self.broker.middleware if isinstance(m, WebhookRelay)).release_all()
        if isinstance(self.broker, StubBroker) and self._worker is not None:
            for name in (self.send_queue, self.notice_queue, self.webhook_queue):
                if name in self.broker.queues:
                    self.broker.join(name, timeout=timeout_ms, fail_fast=False)
            self._worker.join()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        self.broker.close()


def make_broker(settings: Settings, app: Flask) -> dramatiq.Broker:
    """Build the app's broker: in-process with no ``BROKER_URL``, else Redis or RabbitMQ."""
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
        WebhookRelay(app),
    ]
    url = settings.broker_url
    if url is None:
        return StubBroker(middleware=middleware, fail_fast_default=False)
    # Each broker module imports its client library (redis, pika): only the one in use loads.
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=middleware, namespace=settings.queue_prefix + "dq")
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=middleware, confirm_delivery=True)


def queue() -> TaskQueue:
    """Return the task queue of the app in context."""
    return current_app.extensions[EXTENSION_KEY]
