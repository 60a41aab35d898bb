"""The webhook relay: a thread per worker process, in the style of the notice ``OutboxRelay``.

Every ``INTERVAL`` seconds (or at once when woken) it fans held events out to deliveries,
leases the ones due (retries included: their time comes round here), commits, and queues one
``deliver_webhooks`` job per endpoint and ``delivery.PER_JOB`` deliveries. The database says
what is due, so a lost job or a crashed worker only delays a delivery by ``delivery.LEASE``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from dramatiq.middleware import Middleware
from flask import Flask

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.webhooks import delivery, posting

log = logging.getLogger(__name__)
QUEUE = "webhooks"
ACTOR = "deliver_webhooks"


class WebhookRelay(Middleware):
    """Fan out and queue due webhook deliveries, from every worker process."""

    INTERVAL = 0.5

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._releasing = threading.Lock()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prefsvc-webhooks", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def before_worker_thread_shutdown(self, broker: Any, thread: Any) -> None:
        posting.close()  # this thread's kept-alive connections to receivers

    def wake(self) -> None:
        self._wake.set()

    def release_all(self) -> int:
        """Fan out everything held and queue everything due now; return how many jobs."""
        from prefsvc.queue import broker  # the task queue of this app, built after us

        queued = 0
        with self._releasing, self.app.app_context():
            try:
                now = clock.now()
                while delivery.fan_out(db.session, now=now) == delivery.FAN_OUT_BATCH:
                    db.session.commit()
                while True:  # the last fan-out commits with the first lease: one transaction
                    lease, claimed = delivery.claim_due(db.session, now=now)
                    db.session.commit()
                    task_queue = broker.queue()
                    for ids in delivery.jobs(claimed):
                        task_queue.actors[ACTOR].send(ids, lease.isoformat())
                        queued += 1
                    if sum(map(len, claimed.values())) < delivery.CLAIM_BATCH:
                        break
                if queued:
                    task_queue._ensure_inprocess_worker()
                return queued
            finally:
                db.session.remove()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.release_all()
            except Exception:  # noqa: BLE001 - the rows stay held or due; the next round retries
                log.exception("could not relay the webhook deliveries")
            self._wake.wait(self.INTERVAL)
            self._wake.clear()


def relay(task_queue: Any) -> WebhookRelay:
    """Return the webhook relay of a task queue's broker."""
    return next(m for m in task_queue.broker.middleware if isinstance(m, WebhookRelay))
