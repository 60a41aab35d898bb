"""Operational commands: demo, worker."""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask import current_app
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from prefsvc import clock, demo
from prefsvc.extensions import db
from prefsvc.inbound import demo_reports
from prefsvc.mail import kit
from prefsvc.models import Contact, Topic
from prefsvc.queue import broker, scheduler, workers
from prefsvc.queue.launcher import launch
from prefsvc.settings import current_settings
from prefsvc.webhooks import demo_receiver


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the data and the outbox, then exit.")
def demo_command(host: str, port: int, no_serve: bool) -> None:
    """Migrate, load demo data, send one campaign to the outbox, and serve the app."""
    settings = current_settings()
    upgrade(directory=current_app.extensions["migrate"].directory)
    session = db.session
    if demo.already_loaded(session):
        click.echo("demo data already loaded (delete instance/ to start afresh)")
    else:
        campaign = demo.load(
            session, now=clock.now(), today=clock.today(), suppression_key=settings.suppression_key
        )
        session.commit()
        size = launch(campaign.id)
        broker.queue().join(timeout_ms=120_000)
        click.echo(f"demo data loaded; campaign {campaign.id} sent to {size} contacts")
        # One address bounces, one complains: a DSN and an ARF report through the intake.
        came_back = demo_reports.feed(
            session, settings, campaign.id, now=clock.now(), today=clock.today()
        )
        session.commit()
        click.echo(f"mail that came back: {', '.join(came_back)}")
    admin_login = demo.ensure_admin(session, now=clock.now())
    receiver_url = f"http://127.0.0.1:{port + 1}/"  # the demo's own webhook receiver
    secret = demo_receiver.register(session, receiver_url, now=clock.now()).secret
    session.commit()
    if not no_serve:
        demo_receiver.start(secret, "127.0.0.1", port + 1)
    _print_links(settings, host, port, admin_login)
    click.echo(f"  webhooks received (signed, every event): {receiver_url}\n")
    if not no_serve:
        # Flask's app.run() refuses to run inside a CLI command; serve with Werkzeug directly.
        app = current_app._get_current_object()
        # The periodic jobs run in process, so scheduled campaigns go out in the demo too.
        threading.Thread(
            target=_scheduler_loop,
            args=(app, DEMO_SCHEDULER_INTERVAL, threading.Event()),
            name="prefsvc-scheduler",
            daemon=True,
        ).start()
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


def _print_links(settings, host: str, port: int, admin_login: tuple[str, str]) -> None:

    base = settings.base_url
    contact = db.session.scalar(
        db.select(Contact).where(Contact.email.is_not(None)).order_by(Contact.id.desc()).limit(1)
    )
    topic = db.session.scalar(db.select(Topic).order_by(Topic.id).limit(1))
    lines = []
    if settings.mail_url.startswith("maildir:"):
        lines.append(("outbox: open a mail, click its links", f"{base}/outbox"))
    if contact is not None and topic is not None:
        unsubscribe, preferences = kit.links(settings, contact.public_id, topic.id)
        lines.append((f"preference centre of {contact.first_name}", preferences))
        lines.append(("one-click unsubscribe page", unsubscribe))
    username, password = admin_login
    lines.append(("admin UI", f"{base}/admin/  (user {username!r}, password {password!r})"))
    lines.append(("sign-in link by email (no old mail)", f"{base}/p"))
    lines.append(("public sign-up (double opt-in)", f"{base}/s"))
    lines.append(("API docs (key: prefsvc apikeys create)", f"{base}/api/v1/docs"))
    lines.append(("health", f"{base}/healthz"))
    lines.append(("metrics", f"{base}/metrics"))
    lines.append(("campaign figures", ".venv/bin/prefsvc campaigns show 1 --json"))
    width = max(len(label) for label, _ in lines) + 2
    click.echo(f"\nprefsvc demo on http://{host}:{port}  (Ctrl+C stops it)")
    for label, value in lines:
        click.echo(f"  {label + ':':<{width}}{value}")
    click.echo("")


@click.command("worker")
@click.option("--processes", type=click.IntRange(1, 256), default=None, help="Worker processes.")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="Threads per process.")
def worker_command(processes: int | None, threads: int | None) -> None:
    """Run Dramatiq worker processes for the configured broker."""
    settings = current_settings()
    if settings.embedded_queue:
        raise click.ClickException(
            "PREFSVC_BROKER_URL is not set: the in-process queue runs inside the app and the CLI; "
            "set it to redis://… or amqp://… to run separate workers"
        )
    workers.run(
        processes or settings.worker_processes,
        threads or settings.worker_threads,
        log_format=settings.log_format,
    )


@click.command("scheduler")
@click.option(
    "--interval",
    type=click.FloatRange(1, 3600),
    default=60,
    show_default=True,
    help="Seconds between ticks.",
)
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
def scheduler_command(interval: float, once: bool) -> None:
    """Run the periodic jobs: scheduled campaigns, stuck deliveries, re-permission, retention."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not once:
        _scheduler_loop(current_app._get_current_object(), interval, stop)
        return
    report = _tick()
    click.echo(
        f"launched {len(report.launched)}; recovered {report.recovered}; "
        f"requeued {report.requeued}; "
        f"re-permission {report.repermission_requests} requests, "
        f"{report.repermission_reminders} reminders; retention "
        + (f"ran, {report.anonymised} anonymised" if report.retention_ran else "not due")
        + (f"; IMAP taken {report.imap_taken}" if report.imap_polled else "")
    )
    broker.queue().join(timeout_ms=600_000)


# Seconds between the demo's in-process scheduler ticks.
DEMO_SCHEDULER_INTERVAL = 30.0


def _tick() -> scheduler.TickReport:
    """Run one scheduler tick in the app context; wake the in-process relay for its jobs."""
    try:
        return scheduler.tick(db.session, current_settings(), now=clock.now(), launch=launch)
    finally:
        db.session.remove()
        broker.queue().jobs_held()


def _scheduler_loop(app, interval: float, stop: threading.Event) -> None:
    """Tick every ``interval`` seconds until ``stop``; a failed tick is logged and retried."""
    while True:
        with app.app_context():
            try:
                _tick()
            except Exception:  # noqa: BLE001 - the next tick tries again; the admin shows it
                logging.getLogger(__name__).exception("scheduler tick failed")
        if stop.wait(interval):
            return


commands = [demo_command, worker_command, scheduler_command]
