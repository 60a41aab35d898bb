"""``prefsvc campaigns``: create, send, show, duplicate, delete a draft, archive."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

import click

from prefsvc import clock
from prefsvc.campaigns import campaigns, control, preview
from prefsvc.commands.group import DomainGroup
from prefsvc.errors import InvalidInput
from prefsvc.extensions import db
from prefsvc.mail import kit
from prefsvc.mail.limits import Limits
from prefsvc.models import LANGUAGES, CampaignStatus
from prefsvc.queue import broker, launcher
from prefsvc.settings import current_settings

group = DomainGroup("campaigns", help="Mailings to a topic's subscribers.")


def _read(path: str, field: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(field, f"cannot read {path}: {exc}") from None


@group.command("create")
@click.option("--topic", "topic_slug", required=True, help="Slug of the topic to send to.")
@click.option("--subject", required=True, help="Subject line (a Jinja2 template).")
@click.option(
    "--html",
    "html_file",
    required=True,
    help="Content file (a Jinja2 template): HTML, or Markdown with --format markdown.",
)
@click.option(
    "--format",
    "content_format",
    type=click.Choice(["html", "markdown"]),
    default="html",
    show_default=True,
    help="markdown: the content is Markdown, put into the house layout.",
)
@click.option("--preheader", default=None, help="Hidden preview line shown after the subject.")
@click.option("--name", default=None, help="What staff call the campaign (default: the subject).")
@click.option(
    "--text", "text_file", default=None, help="Plain-text body file (default: from HTML)."
)
@click.option(
    "--language",
    type=click.Choice(LANGUAGES),
    default="nl",
    show_default=True,
    help="Language of this content.",
)
@click.option(
    "--fallback",
    type=click.Choice([*LANGUAGES, campaigns.NO_FALLBACK]),
    default=None,
    help="Variant for contacts whose language has none (default: the first language, with "
    "their own footer); none: they are excluded (no_variant_in_language).",
)
@click.option(
    "--track-clicks",
    is_flag=True,
    help="Count clicks per link through signed redirects (never who clicked); off by default.",
)
def create(
    topic_slug: str,
    subject: str,
    html_file: str,
    text_file: str | None,
    language: str,
    fallback: str | None,
    content_format: str,
    preheader: str | None,
    name: str | None,
    track_clicks: bool,
) -> None:
    """Create a draft campaign; prints its id alone on the last line."""
    html = _read(html_file, "html")
    text = _read(text_file, "text") if text_file else None
    campaign = campaigns.create(
        db.session,
        topic_slug=topic_slug,
        variants={language: (subject, html, text)},
        fallback=fallback,
        content_format=content_format,
        preheaders={language: preheader},
        name=name,
        bounds=Limits.from_settings(current_settings()),
        track_clicks=track_clicks,
    )
    db.session.commit()
    click.echo(campaign.id)


@group.command("send")
@click.argument("campaign_id", type=int)
@click.option("--wait", is_flag=True, help="Return when every delivery is final.")
@click.option(
    "--timeout", type=float, default=3600, show_default=True, help="Seconds --wait waits."
)
def send(campaign_id: int, wait: bool, timeout: float) -> None:
    """Queue a campaign for sending."""
    size = launcher.launch(campaign_id)
    click.echo(f"campaign {campaign_id}: {size} recipients queued", err=True)
    if wait or current_settings().embedded_queue:
        # The in-process queue lives in this process: it must finish before we exit.
        _wait(campaign_id, size, timeout)


def _wait(campaign_id: int, size: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    show_bar = sys.stderr.isatty() and size > 0
    bar = click.progressbar(length=size, label="sending", file=sys.stderr) if show_bar else None
    done_before = 0
    try:
        while True:
            db.session.expire_all()
            campaign = campaigns.get(db.session, campaign_id)
            report = campaigns.stats(
                db.session,
                campaign,
                today=clock.today(),
                years=current_settings().marketing_window_years,
            )
            db.session.commit()
            done = size - report["queued"] - report["sending"]
            if bar is not None:
                bar.update(done - done_before)
            done_before = done
            if campaign.status is not CampaignStatus.SENDING:
                return
            if time.monotonic() > deadline:
                raise click.ClickException(f"campaign {campaign_id} still sending after {timeout}s")
            time.sleep(0.2)
    finally:
        if bar is not None:
            bar.render_finish()


@group.command("show")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def show(campaign_id: int, as_json: bool) -> None:
    """Show a campaign's status and counts."""
    campaign = campaigns.get(db.session, campaign_id)
    report = campaigns.stats(
        db.session, campaign, today=clock.today(), years=current_settings().marketing_window_years
    )
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"campaign {report['id']} ({report['topic']}): {report['status']}")
    for key in ("audience", "queued", "sending", "sent", "failed", "unsubscribes"):
        click.echo(f"  {key:<13}{report[key]}")
    for reason, n in report["excluded"].items():
        click.echo(f"  excluded     {n} ({reason})")
    for language, variants in report["by_language"].items():
        shares = ", ".join(f"{n} {variant}" for variant, n in variants.items())
        click.echo(f"  readers {language:<5}{shares}")
    came_back = ("bounced", "bounced_soft", "complained", "policy_refusals")
    if any(report[key] for key in came_back):
        for key in came_back:
            rate = report["rates"][key]
            share = f" ({rate:.2%} of sent)" if rate is not None else ""
            click.echo(f"  {key:<12} {report[key]}{share}")
    if report["unsubscribes_undone"]:
        click.echo(f"  {'undone':<13}{report['unsubscribes_undone']} (unsubscribed, then back)")
    for language, per in report["per_language"].items():
        figures = ", ".join(f"{n} {key}" for key, n in per.items())
        click.echo(f"  results {language:<5}{figures}")
    if report["clicks"] is not None:
        click.echo(f"  {'clicks':<13}{report['clicks']['total']}")
        for link in report["clicks"]["links"]:
            click.echo(f"    {link['clicks']:>6}  {link['url']}")
    if report["complaint_level"] != "ok":
        click.echo("  warning      complaint rate above 0.1 % (providers act at 0.3 %)")
    if report["pause_reason"]:
        click.echo(f"  paused by    {report['pause_reason']}")


@group.command("schedule")
@click.argument("campaign_id", type=int)
@click.option(
    "--at",
    "at_text",
    required=True,
    help="When to send: ISO date-time; without an offset it is read in TIMEZONE.",
)
def schedule(campaign_id: int, at_text: str) -> None:
    """Schedule a draft campaign (the scheduler launches it)."""
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        raise InvalidInput("at", f"not an ISO date-time: {at_text!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=current_settings().timezone)
    campaign = campaigns.get(db.session, campaign_id)
    control.schedule(db.session, campaign, at=at, now=clock.now())
    db.session.commit()
    click.echo(f"campaign {campaign_id} scheduled for {at.isoformat()}")


@group.command("pause")
@click.argument("campaign_id", type=int)
def pause(campaign_id: int) -> None:
    """Pause a sending campaign."""
    control.pause(db.session, campaigns.get(db.session, campaign_id))
    db.session.commit()
    click.echo(f"campaign {campaign_id} paused")


@group.command("resume")
@click.argument("campaign_id", type=int)
def resume(campaign_id: int) -> None:
    """Resume a paused campaign."""
    control.resume(db.session, campaigns.get(db.session, campaign_id))
    db.session.commit()
    settings = current_settings()
    count = launcher.requeue(campaign_id)
    click.echo(f"campaign {campaign_id} resumed; {count} deliveries queued")
    if settings.embedded_queue:
        broker.queue().join(timeout_ms=3_600_000)


@group.command("cancel")
@click.argument("campaign_id", type=int)
def cancel(campaign_id: int) -> None:
    """Cancel a campaign for good."""
    dropped = control.cancel(db.session, campaigns.get(db.session, campaign_id), now=clock.now())
    db.session.commit()
    click.echo(f"campaign {campaign_id} cancelled; {dropped} deliveries will not be sent")


@group.command("test-send")
@click.argument("campaign_id", type=int)
@click.option("--to", "to", required=True, help="Address to send the preview to.")
@click.option("--language", type=click.Choice(LANGUAGES), default=None)
def test_send(campaign_id: int, to: str, language: str | None) -> None:
    """Send one preview copy; not counted in the campaign's figures."""
    settings = current_settings()
    campaign = campaigns.get(db.session, campaign_id)
    transport = kit.transport(settings)
    try:
        preview.test_send(
            db.session,
            campaign,
            to=to,
            language=language,
            settings=settings,
            now=clock.now(),
            transport=transport,
        )
    finally:
        kit.close_thread_resources()
    click.echo(f"test copy of campaign {campaign_id} sent")


@group.command("duplicate")
@click.argument("campaign_id", type=int)
def duplicate(campaign_id: int) -> None:
    """Copy a campaign into a new draft; prints the new id alone on the last line."""
    copy = campaigns.duplicate(db.session, campaigns.get(db.session, campaign_id))
    db.session.commit()
    click.echo(f"campaign {campaign_id} copied into draft {copy.id}", err=True)
    click.echo(copy.id)


@group.command("delete")
@click.argument("campaign_id", type=int)
def delete(campaign_id: int) -> None:
    """Delete a draft (a campaign that was scheduled or sent is kept: archive it instead)."""
    campaigns.delete_draft(db.session, campaigns.get(db.session, campaign_id))
    db.session.commit()
    click.echo(f"draft {campaign_id} deleted")


@group.command("archive")
@click.argument("campaign_id", type=int)
@click.option("--undo", is_flag=True, help="Bring the campaign back to the default list.")
def archive(campaign_id: int, undo: bool) -> None:
    """Hide a sent or cancelled campaign from the default list (its figures stay)."""
    campaign = campaigns.get(db.session, campaign_id)
    if undo:
        campaigns.unarchive(db.session, campaign)
    else:
        campaigns.archive(db.session, campaign, now=clock.now())
    db.session.commit()
    click.echo(f"campaign {campaign_id} {'back in the list' if undo else 'archived'}")
