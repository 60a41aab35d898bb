"""Launch and requeue campaigns from an app context (CLI, API, admin, scheduler).

``campaigns.launch`` and ``campaigns.requeue`` are domain functions that take a session, the
time, settings values and an ``enqueue`` callable; this is the one place that hands them the
app's session, clock, settings and task queue.
"""

from __future__ import annotations

from prefsvc import clock
from prefsvc.campaigns import campaigns
from prefsvc.extensions import db
from prefsvc.queue import broker
from prefsvc.settings import current_settings


def launch(campaign_id: int) -> int:
    """Fan a campaign out, commit, and queue its batches; return the audience size."""
    settings = current_settings()
    return campaigns.launch(
        db.session,
        campaign_id,
        now=clock.now(),
        today=clock.today(),
        years=settings.marketing_window_years,
        batch_size=settings.batch_size,
        enqueue=broker.queue().send_batch,
    )


def requeue(campaign_id: int) -> int:
    """Queue a campaign's remaining deliveries again (after resume); return how many."""
    return campaigns.requeue(
        db.session,
        campaign_id,
        batch_size=current_settings().batch_size,
        enqueue=broker.queue().send_batch,
    )
