"""``prefsvc worker``: a small supervisor running Dramatiq worker processes for a real broker.

Each child process builds its own app (and so its own broker connection and database pool)
and runs a Dramatiq ``Worker`` with the requested number of threads. A child that dies is
restarted; SIGTERM/SIGINT stop them all gracefully.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import signal
import threading
import time

import dramatiq

from prefsvc import create_app
from prefsvc.queue import broker
from prefsvc.settings import Settings

log = logging.getLogger(__name__)
TEXT_FORMAT = "%(asctime)s %(processName)s %(levelname)s %(name)s: %(message)s"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, for log shippers. Messages hold ids and counts, never
    addresses or tokens (the sending code logs nothing else, and database errors hide their
    bound values)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    """Log to stderr at INFO, as text or JSON lines (``PREFSVC_LOG_FORMAT``)."""
    handler = logging.StreamHandler()
    formatter = JsonLogFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _child(processes: int, threads: int) -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    # The real process count, so that local rate limits are shared out right (rate_limits).
    app = create_app(settings.with_(worker_processes=processes), web=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with app.app_context():
        dramatiq_broker = broker.queue().broker
    # An idle consumer polls Redis at most every 250 ms (Dramatiq's backoff; RabbitMQ pushes):
    # a campaign, or a sign-in link, waited up to a second for an idle worker at 1000 ms.
    worker = dramatiq.Worker(dramatiq_broker, worker_threads=threads, worker_timeout=250)
    worker.start()
    log.info("worker process ready with %d threads", threads)
    stop.wait()
    worker.stop(timeout=30_000)
    dramatiq_broker.close()


def run(processes: int, threads: int, *, log_format: str = "text") -> None:
    """Start ``processes`` children and keep them running until told to stop."""
    configure_logging(log_format)
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    children: list[multiprocessing.Process] = []

    def start_one(index: int) -> multiprocessing.Process:
        process = context.Process(
            target=_child, args=(processes, threads), name=f"prefsvc-worker-{index}"
        )
        process.start()
        return process

    def shutdown(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    children = [start_one(i) for i in range(processes)]
    log.info("started %d worker processes x %d threads", processes, threads)
    while not stopping.is_set():
        for i, child in enumerate(children):
            if not child.is_alive() and not stopping.is_set():
                log.warning(
                    "worker process %s exited with %s; restarting", child.name, child.exitcode
                )
                children[i] = start_one(i)
        stopping.wait(1.0)
    for child in children:
        if child.is_alive():
            child.terminate()  # SIGTERM: the child stops its Dramatiq worker gracefully
    deadline = time.monotonic() + 40
    for child in children:
        child.join(max(0.1, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
