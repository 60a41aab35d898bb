"""The broker set-up: its middleware follows the settings."""

from __future__ import annotations

from dramatiq.middleware import Retries

from prefsvc import create_app
from prefsvc.queue import broker


def test_retry_backoff_of_temporary_failures_is_bounded_by_the_settings(settings, clock):
    app = create_app(
        settings.with_(retry_min_backoff_seconds=5, retry_max_backoff_seconds=60, max_retries=3),
        clock=clock,
    )
    with app.app_context():
        [retries] = [m for m in broker.queue().broker.middleware if isinstance(m, Retries)]
        assert (retries.min_backoff, retries.max_backoff, retries.max_retries) == (
            5_000,
            60_000,
            3,
        )
        broker.queue().stop()
