"""Operations endpoints: health and metrics."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.queue import broker, outbox, scheduler
from prefsvc.reports.metrics import DatabaseCollector, FiguresCache
from prefsvc.settings import current_settings

bp = Blueprint("ops", __name__)
CACHE_KEY = "prefsvc.metrics_figures"


@bp.get("/healthz")
def healthz():
    """Report whether the database and the broker answer, and what waits for a broker.

    503 when the database or the broker does not answer, or when jobs have waited in the
    outbox longer than ``OUTBOX_STALE_SECONDS`` (no relay could queue them: broker or every
    worker down). When the scheduler last ran is reported, not judged (the admin warns).
    """
    status = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(v in ("ok", "in-process") for v in status.values())
    extra = _waiting() if status["database"] == "ok" else {}
    if extra.get("jobs_waiting"):
        healthy = False
    body = dict(status=("ok" if healthy else "degraded"), **status, **extra)
    return jsonify(body), (200 if healthy else 503)


def _waiting() -> dict[str, object]:
    """Jobs held longer than ``OUTBOX_STALE_SECONDS``, and when the scheduler last ran."""
    now = clock.now()
    stale = timedelta(seconds=broker.queue().settings.outbox_stale_seconds)
    try:
        count, oldest = outbox.waiting(db.session, now=now, older_than=stale)
        last = scheduler.last_run(db.session)
        db.session.commit()
    except Exception:  # noqa: BLE001 - the database check above says what is wrong
        db.session.rollback()
        return {}
    return {
        "jobs_waiting": count,
        "oldest_job_waiting_seconds": int((now - oldest).total_seconds()) if oldest else None,
        "scheduler_last_run": last.isoformat() if last else None,
    }


def _check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        db.session.rollback()
        return "unreachable"


def _check_broker() -> str:
    queue = broker.queue()
    url = queue.settings.broker_url
    if url is None:
        return "in-process"
    try:
        if url.startswith("redis"):
            queue.broker.client.ping()
        else:
            # only a RabbitMQ broker needs pika (~57 ms, ~14 MB): a Redis web never loads it
            import pika

            connection = pika.BlockingConnection(pika.URLParameters(url))
            connection.close()
        return "ok"
    except Exception:  # noqa: BLE001
        return "unreachable"


@bp.get("/metrics")
def metrics():
    """Prometheus exposition of the figures in the shared database and broker."""
    registry = CollectorRegistry(auto_describe=False)
    now = clock.now()
    # This process's database figures, shared by its threads (METRICS_CACHE_SECONDS).
    cache = current_app.extensions.setdefault(CACHE_KEY, FiguresCache())
    collector = DatabaseCollector(
        db.session,
        broker.queue().depth(),
        now=now,
        cache=cache,
        at=now.timestamp(),
        ttl=current_settings().metrics_cache_seconds,
    )
    registry.register(collector)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
