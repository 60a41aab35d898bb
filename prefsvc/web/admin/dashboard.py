"""The admin home page: the figures both teams watch."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template
from flask_babel import get_locale

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.queue import outbox, scheduler
from prefsvc.reports import dashboard
from prefsvc.settings import current_settings
from prefsvc.web.admin.blueprint import EVERYONE, bp, requires


@bp.get("/")
@requires(EVERYONE)
def home():
    settings = current_settings()
    figures = dashboard.figures(
        db.session,
        today=clock.today(),
        years=settings.marketing_window_years,
        language=str(get_locale()),
    )
    now = clock.now()
    waiting, oldest = outbox.waiting(
        db.session, now=now, older_than=timedelta(seconds=settings.outbox_stale_seconds)
    )
    last = scheduler.last_run(db.session)
    background = {
        "scheduler_last_run": last,
        "scheduler_late": scheduler.late(last, now=now),
        "jobs_waiting": waiting,
        "oldest_job_waiting": oldest,
    }
    return render_template(
        "admin/dashboard.html", figures=figures, today=clock.today(), background=background
    )
