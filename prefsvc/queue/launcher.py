"""Launch and requeue campaigns from an app context (CLI, API, admin, scheduler).

``campaigns.launch`` and ``campaigns.requeue`` are domain functions that take a session, the
time and settings values, and hold their batch jobs in the job outbox; this is the one place
that hands them the app's session, clock and settings, and wakes the in-process relay.
"""

from __future__ import annotations

from prefsvc import clock
from prefsvc.campaigns import campaigns
from prefsvc.extensions import db
from prefsvc.queue import broker
from prefsvc.settings import current_settings


def launch(campaign_id: int) -> int:
    """Fan a campaign out and commit it with its batch jobs; return the audience size.

    No broker call: with the broker down the campaign is ``sending`` and its jobs wait.
    """
    settings = current_settings()
    size = campaigns.launch(
        db.session,
        campaign_id,
        now=clock.now(),
        today=clock.today(),
        years=settings.marketing_window_years,
        batch_size=settings.batch_size,
    )
    broker.queue().jobs_held()
    return size


def requeue(campaign_id: int) -> int:
    """Hold jobs for a campaign's remaining deliveries (after resume); return how many."""
    count = campaigns.requeue(
        db.session, campaign_id, batch_size=current_settings().batch_size, now=clock.now()
    )
    broker.queue().jobs_held()
    return count
