"""Dramatiq set-up: one broker per app, its middleware (app context, heartbeat, outbox relay).

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

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.mail import kit
from prefsvc.queue import heartbeats, outbox
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
    """Queue the jobs held in the database (``outbox.release``), from every worker process.

    A thread per process that runs a Dramatiq worker: it looks every ``INTERVAL`` seconds,
    or at once when woken (the in-process worker of the embedded default), and hands what it
    finds to the broker. Held jobs therefore need a running worker, like all mail; while the
    broker is down they wait in the database.
    """

    INTERVAL = 0.5

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._releasing = threading.Lock()  # join() releases inline: one release at a time
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if self._thread is not None:
            return  # a second Worker on the same broker (tests): one relay is enough
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
        """Queue everything held now; return how many jobs were queued."""
        total = 0
        with self._releasing, self.app.app_context():
            task_queue = queue()
            try:
                while True:
                    released = outbox.release(
                        db.session, task_queue.queue_jobs, actors=task_queue.actors
                    )
                    total += released
                    if released < outbox.RELEASE_BATCH:
                        return total
            finally:
                db.session.remove()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.release_all()
                failing = False
            except Exception as exc:  # noqa: BLE001 - the rows stay held; the next round retries
                if not failing:  # once per outage, not twice a second
                    log.warning("could not queue the held jobs: %s", type(exc).__name__)
                failing = True
            self._wake.wait(self.INTERVAL)
            self._wake.clear()


class Heartbeat(Middleware):
    """Keep this process's heartbeat row fresh while it runs a worker (``heartbeats``).

    The first beat is written before the worker takes a job; then a thread beats every
    ``LEASE_SECONDS / 3``. Deliveries this process claims carry ``name``: when it dies
    (SIGKILL, machine lost) its rows are taken over ``LEASE_SECONDS`` after its last beat.
    """

    def __init__(self, app: Flask, lease_seconds: int) -> None:
        self.app = app
        self.name = heartbeats.process_name()
        self.interval = max(0.5, lease_seconds / 3)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if self._thread is not None:
            return
        try:
            self.beat()
        except Exception as exc:  # noqa: BLE001 - claims beat too; the thread tries again
            log.warning("could not write the first heartbeat: %s", type(exc).__name__)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prefsvc-heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        if self._thread is None:
            return
        self._thread.join(timeout=10)
        self._thread = None
        # Every claim was handed back or finished: say goodbye, so nothing waits for the lease.
        # In a thread of its own, waited for briefly: on SQLite a writer still holding the lock
        # (a test's open transaction) must not hold up a stopping process; the row ages out.
        goodbye = threading.Thread(target=self._forget, name="prefsvc-goodbye", daemon=True)
        goodbye.start()
        goodbye.join(timeout=1)

    def _forget(self) -> None:
        try:
            with self.app.app_context():
                heartbeats.forget(db.session, self.name)
                db.session.commit()
                db.session.remove()
        except Exception:  # noqa: BLE001 - the row just ages out
            pass

    def beat(self) -> None:
        with self.app.app_context():
            try:
                heartbeats.beat(db.session, self.name, heartbeats.WORKER, now=clock.now())
                db.session.commit()
            finally:
                db.session.remove()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - next beat; a long outage ends the lease
                log.warning("heartbeat not written: %s", type(exc).__name__)


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

    @property
    def notice_queue(self) -> str:
        return f"{self.settings.queue_prefix}notices"

    @property
    def owner(self) -> str:
        """This process's heartbeat name: the owner of the deliveries it claims."""
        return next(m for m in self.broker.middleware if isinstance(m, Heartbeat)).name

    def send_batch(self, delivery_ids: list[int]) -> None:
        """Queue one batch now. Only for what is not caused by a change being committed (the
        relay, tests): everything else holds its jobs in the outbox (``prefsvc.queue.outbox``)."""
        self.actors["send_batch"].send(delivery_ids)
        self._ensure_inprocess_worker()

    def send_notice(self, kind: str, contact_id: int, params: dict[str, Any] | None = None) -> None:
        """Queue one service message now; as ``send_batch``, not for a change's own mail."""
        self.actors["send_notice"].send(kind, contact_id, params or {})
        self._ensure_inprocess_worker()

    def queue_jobs(self, actor: str, jobs: list[list[Any]]) -> None:
        """Queue a run of released jobs of one actor; notices ``NOTICES_PER_JOB`` to a job."""
        if actor == "send_notice":
            for start in range(0, len(jobs), NOTICES_PER_JOB):
                self.actors["send_notices"].send(jobs[start : start + NOTICES_PER_JOB])
        else:
            for args in jobs:
                self.actors[actor].send(*args)
        self._ensure_inprocess_worker()

    def jobs_held(self) -> None:
        """Say that jobs were committed to the outbox: the in-process relay queues them now.

        With a broker service the relays of the worker processes find them within
        ``OutboxRelay.INTERVAL``; nothing is sent from here, so a broker outage is no error.
        """
        if isinstance(self.broker, StubBroker):
            self._ensure_inprocess_worker()
            self.relay.wake()

    notices_held = jobs_held  # its name while only notices were held (callers on other branches)

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
        Heartbeat(app, settings.lease_seconds),
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
