"""gunicorn's settings for prefsvc, read from the working directory by ``gunicorn wsgi:app``."""

from __future__ import annotations


def post_worker_init(worker) -> None:
    """Warm each web process before it accepts a request (``prefsvc.web.warmup``)."""
    from flask import Flask

    from prefsvc.web.warmup import warm_up

    if isinstance(worker.wsgi, Flask):
        warm_up(worker.wsgi, connections=worker.cfg.threads)
