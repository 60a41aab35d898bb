"""The actors: thin, idempotent jobs that take ids, resolve the app context and call the domain.

``init_app`` gives an app its task queue: the broker of ``broker.make_broker`` with these actors
declared on it. Actor names, queue names and priorities are what workers and queued messages
rely on: they do not change.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from flask import Flask

from prefsvc import clock
from prefsvc.campaigns import delivery
from prefsvc.errors import TemporaryBatchFailure
from prefsvc.extensions import db
from prefsvc.mail import kit, notice_kinds
from prefsvc.mail.transport import PermanentFailure, TemporaryFailure
from prefsvc.people.importing import jobs as import_jobs
from prefsvc.queue import broker
from prefsvc.settings import SETTINGS_KEY, Settings, current_settings
from prefsvc.webhooks import jobs as webhooks

log = logging.getLogger(__name__)
# A worker picks the highest priority (lowest number) of the jobs it holds: service mail
# (sign-in links, opt-out acknowledgements) must not wait behind a campaign's batches,
# whose threads spend their time paced by the rate limits.
NOTICE_PRIORITY = 0
CAMPAIGN_PRIORITY = 10
NOTICE_RETRY_DELAY_MS = 5_000
# An import job streams its file chunk by chunk and goes on from its last chunk when it is
# run again: hours for the largest file allowed, not the minutes of a batch.
IMPORT_TIME_LIMIT_MS = 6 * 3600 * 1000


def init_app(app: Flask) -> None:
    """Give the app its task queue: a broker with the actors below declared on it."""
    settings: Settings = app.extensions[SETTINGS_KEY]
    task_queue = broker.TaskQueue(settings=settings, broker=broker.make_broker(settings, app))
    actors = (
        (send_batch, task_queue.send_queue, CAMPAIGN_PRIORITY),
        (send_notice, task_queue.notice_queue, NOTICE_PRIORITY),
        (send_notices, task_queue.notice_queue, NOTICE_PRIORITY),
        (deliver_webhooks, task_queue.webhook_queue, NOTICE_PRIORITY),
        (run_import, task_queue.notice_queue, CAMPAIGN_PRIORITY),
    )
    for function, queue_name, priority in actors:
        name = function.__name__
        options = {"time_limit": IMPORT_TIME_LIMIT_MS} if function is run_import else {}
        task_queue.actors[name] = dramatiq.actor(
            function,
            broker=task_queue.broker,
            actor_name=name,
            queue_name=queue_name,
            # webhook retries are the database's (``webhooks.delivery``), not the broker's
            max_retries=0 if function is deliver_webhooks else settings.max_retries,
            priority=priority,
            **options,
        )
    app.extensions[broker.EXTENSION_KEY] = task_queue


def send_batch(delivery_ids: list[int]) -> None:
    """Deliver one batch of deliveries (idempotent: anything not queued is skipped)."""
    settings = current_settings()
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else 0
    try:
        result = delivery.deliver(
            db.session,
            delivery_ids,
            settings=settings,
            now=clock.now,
            transport=kit.transport(settings),
            final_attempt=retries >= settings.max_retries,
            owner=broker.queue().owner,
        )
    except TemporaryBatchFailure as exc:
        # Retried with exponential backoff by the Retries middleware, without an error log.
        raise dramatiq.Retry(str(exc), delay=exc.retry_after_ms) from None
    if result.deferred:
        # Held back by a rate limit: a new job (not a retry: no failure, no retry budget used),
        # queued before this message is acknowledged, so a crash here loses nothing.
        broker.queue().actors["send_batch"].send_with_options(
            args=(result.deferred,), delay=int(result.defer_seconds * 1000) + 1
        )


def send_notice(kind: str, contact_id: int, params: dict[str, Any]) -> None:
    """Build and send one service message; a temporary SMTP failure is retried with backoff."""
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


def send_notices(held: list[list[Any]]) -> None:
    """Send the notices a relay released together; one that fails goes on alone.

    One job per release instead of one per notice: the relay and the worker each make one
    broker round trip for up to ``NOTICES_PER_JOB`` acknowledgements. A notice that cannot be
    sent now is queued as its own ``send_notice`` job, with that job's retries and backoff,
    and the rest of the list goes on, so nobody already served is mailed twice.
    """
    for kind, contact_id, params in held:
        try:
            send_notice(kind, contact_id, params)
        except Exception as exc:  # noqa: BLE001 - retried alone, with its own backoff
            log.warning(
                "notice %s for contact %s retried alone: %s", kind, contact_id, type(exc).__name__
            )
            broker.queue().actors["send_notice"].send_with_options(
                args=(kind, contact_id, params), delay=NOTICE_RETRY_DELAY_MS
            )


def run_import(job_id: int) -> None:
    """Run one import job (``importing.jobs.run``): idempotent, and resumes after a crash."""
    settings = current_settings()
    try:
        import_jobs.run(
            db.session,
            job_id,
            files=import_jobs.folder(settings.instance_path),
            suppression_key=settings.suppression_key,
            max_bytes=settings.import_max_bytes,
            now=clock.now(),
            today=clock.today(),
            owner=broker.queue().owner,
            lease=timedelta(seconds=settings.lease_seconds),
        )
    finally:
        db.session.rollback()


def deliver_webhooks(delivery_ids: list[int], lease: str) -> None:
    """Post one endpoint's leased deliveries (``webhook_relay``); the database keeps retries."""
    webhooks.deliver_job(db.session, current_settings(), delivery_ids, lease, clock.now)
