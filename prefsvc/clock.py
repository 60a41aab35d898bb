"""One injectable clock: views, commands and actors ask it for ``now``; tests replace it.

Domain modules (``consent``, ``people``, ...) never call it: they take ``now`` and ``today``
as arguments, so they run the same in a request, a command, an actor or a test without an
app. ``now()`` and ``today()`` are the app-context half, for the thin callers that resolve
the app: the clock an app was built with (``create_app(clock=...)``), else the system's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from flask import current_app

from prefsvc.consent.window import local_today
from prefsvc.settings import current_settings

Clock = Callable[[], datetime]
EXTENSION_KEY = "prefsvc.clock"


def system_clock() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    """Return the current aware UTC instant from the app's clock."""
    clock: Clock = current_app.extensions.get(EXTENSION_KEY, system_clock)
    return clock()


def today() -> date:
    """Return today's date in the service's time zone."""
    return local_today(now(), current_settings().timezone)
