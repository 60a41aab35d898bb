"""``prefsvc topics``: create and list newsletters."""

from __future__ import annotations

import json

import click

from prefsvc.commands.group import DomainGroup
from prefsvc.extensions import db
from prefsvc.people import topics

group = DomainGroup("topics", help="Newsletters contacts can subscribe to.")


@group.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Name shown to recipients.")
@click.option("--description", default=None, help="One line shown in the preference centre.")
def create(slug: str, name: str, description: str | None) -> None:
    """Create a topic."""
    topic = topics.create(db.session, slug, name, description)
    db.session.commit()
    click.echo(f"created topic {topic.slug}")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def list_(as_json: bool) -> None:
    """List topics."""
    rows = topics.all_topics(db.session)
    if as_json:
        click.echo(
            json.dumps(
                [{"slug": t.slug, "name": t.name, "description": t.description} for t in rows]
            )
        )
        return
    for t in rows:
        click.echo(f"{t.slug}\t{t.name}")
