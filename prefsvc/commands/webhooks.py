"""``prefsvc webhooks``: register, list, disable, enable, rotate and replay signed webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from prefsvc import clock
from prefsvc.commands.group import DomainGroup
from prefsvc.errors import InvalidInput
from prefsvc.extensions import db
from prefsvc.webhooks import delivery, endpoints, events

group = DomainGroup("webhooks", help="Signed event webhooks to other systems (CRM, platforms).")


def _events(text: str) -> list[str]:
    return [name for name in text.replace(",", " ").split()]


@group.command("create")
@click.argument("url")
@click.option(
    "--events",
    "event_names",
    default=",".join(events.ALL),
    show_default=True,
    help="Comma-separated events the endpoint receives.",
)
@click.option("--description", default=None, help="What the receiver is (shown in lists).")
def create(url: str, event_names: str, description: str | None) -> None:
    """Register an endpoint; prints its id, then its signing secret (shown once) last."""
    endpoint = endpoints.create(
        db.session, url, _events(event_names), now=clock.now(), description=description
    )
    db.session.commit()
    click.echo(f"created webhook endpoint {endpoint.id} for {', '.join(endpoint.events)}")
    click.echo(endpoint.secret)


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def list_(as_json: bool) -> None:
    """List the endpoints (never their secrets)."""
    rows = [endpoints.summary(e) for e in endpoints.listing(db.session)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "enabled" if row["enabled"] else f"disabled ({row['disabled_reason']})"
        click.echo(f"{row['id']}\t{state}\t{row['url']}\t{','.join(row['events'])}")


@group.command("disable")
@click.argument("endpoint_id", type=int)
def disable(endpoint_id: int) -> None:
    """Stop delivering to an endpoint; its events wait until it is enabled."""
    endpoint = endpoints.get(db.session, endpoint_id)
    changed = endpoints.disable(db.session, endpoint, now=clock.now())
    db.session.commit()
    click.echo(f"webhook endpoint {endpoint_id} {'disabled' if changed else 'already disabled'}")


@group.command("enable")
@click.argument("endpoint_id", type=int)
def enable(endpoint_id: int) -> None:
    """Deliver to an endpoint again, starting with the events that waited."""
    endpoint = endpoints.get(db.session, endpoint_id)
    changed = endpoints.enable(db.session, endpoint, now=clock.now())
    db.session.commit()
    click.echo(f"webhook endpoint {endpoint_id} {'enabled' if changed else 'already enabled'}")


@group.command("rotate-secret")
@click.argument("endpoint_id", type=int)
def rotate_secret(endpoint_id: int) -> None:
    """Give an endpoint a new secret (printed last); the old one signs too for 24 hours."""
    endpoint = endpoints.get(db.session, endpoint_id)
    secret = endpoints.rotate_secret(db.session, endpoint, now=clock.now())
    db.session.commit()
    click.echo(f"webhook endpoint {endpoint_id}: new secret; the previous one signs for 24 hours")
    click.echo(secret)


@group.command("replay")
@click.argument("endpoint_id", type=int)
@click.option("--delivery", "delivery_id", type=int, default=None, help="Only this delivery.")
@click.option("--since", default=None, help="Deliveries created since (ISO 8601, UTC if naive).")
def replay(endpoint_id: int, delivery_id: int | None, since: str | None) -> None:
    """Send an endpoint's deliveries again (all, since a moment, or one), same message ids."""
    endpoints.get(db.session, endpoint_id)
    moment = None
    if since is not None:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput("--since", f"not an ISO 8601 moment: {since!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    count = delivery.replay(
        db.session, now=clock.now(), endpoint_id=endpoint_id, delivery_id=delivery_id, since=moment
    )
    db.session.commit()
    click.echo(f"{count} deliveries queued again")


@group.command("log")
@click.argument("endpoint_id", type=int)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def log(endpoint_id: int, limit: int) -> None:
    """Show an endpoint's latest deliveries and each last answer (JSON)."""
    endpoints.get(db.session, endpoint_id)
    rows = [delivery.entry(d) for d in delivery.log_of(db.session, endpoint_id, limit=limit)]
    click.echo(json.dumps(rows, indent=2))
