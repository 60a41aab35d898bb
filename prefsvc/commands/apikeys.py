"""``prefsvc apikeys``: create, list and revoke the API's bearer keys."""

from __future__ import annotations

import json

import click

from prefsvc import clock
from prefsvc.access import apikeys
from prefsvc.commands.group import DomainGroup
from prefsvc.extensions import db
from prefsvc.models import StaffRole

group = DomainGroup("apikeys", help="Bearer keys of the JSON API.")


@group.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in StaffRole]),
    required=True,
    help="What the key may do: marketing, privacy or admin.",
)
def create(name: str, role: str) -> None:
    """Create a key; prints it alone on the last line, once (only its hash is kept)."""
    row, key = apikeys.create(db.session, name, role, now=clock.now())
    db.session.commit()
    click.echo(f"created API key {row.id} ({row.role.value}); it is shown only now:", err=True)
    click.echo(key)


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def list_(as_json: bool) -> None:
    """List keys (never the keys themselves)."""
    rows = [apikeys.describe(row) for row in apikeys.all_keys(db.session)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        state = f"revoked {r['revoked_at'][:10]}" if r["revoked_at"] else "active"
        click.echo(f"{r['id']}\t{r['prefix']}…\t{r['role']}\t{state}\t{r['name']}")


@group.command("revoke")
@click.argument("key_id", type=int)
def revoke(key_id: int) -> None:
    """Revoke a key for good: the next request with it gets 401."""
    row = apikeys.revoke(db.session, key_id, now=clock.now())
    db.session.commit()
    click.echo(f"revoked API key {row.id}")
