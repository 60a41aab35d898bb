"""``prefsvc topics``: create, edit and list newsletters, named per language."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from prefsvc.commands.group import DomainGroup
from prefsvc.extensions import db
from prefsvc.models import LANGUAGES
from prefsvc.people import topics

group = DomainGroup("topics", help="Newsletters contacts can subscribe to.")


def _text_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --name/--description (every language) and --name-LANG/--description-LANG (one)."""
    for lang in reversed(LANGUAGES):
        command = click.option(
            f"--description-{lang}", default=None, help=f"Description in {lang}."
        )(command)
    for lang in reversed(LANGUAGES):
        command = click.option(f"--name-{lang}", default=None, help=f"Name in {lang}.")(command)
    command = click.option(
        "--description",
        default=None,
        help="One line shown in the preference centre, all languages.",
    )(command)
    return click.option("--name", default=None, help="Name shown to recipients, all languages.")(
        command
    )


def _texts(options: dict[str, str | None]) -> dict[str, Any]:
    return {
        "name": options["name"],
        "description": options["description"],
        "names": {lang: options[f"name_{lang}"] for lang in LANGUAGES},
        "descriptions": {lang: options[f"description_{lang}"] for lang in LANGUAGES},
    }


@group.command("create")
@click.argument("slug")
@_text_options
def create(slug: str, **options: str | None) -> None:
    """Create a topic (--name sets every language; --name-nl/-fr/-en set one)."""
    topic = topics.create(db.session, slug, **_texts(options))
    db.session.commit()
    click.echo(f"created topic {topic.slug}")


@group.command("update")
@click.argument("slug")
@_text_options
def update(slug: str, **options: str | None) -> None:
    """Change a topic's names or descriptions; an empty value clears that language's text."""
    topic = topics.update(db.session, topics.by_slug(db.session, slug), **_texts(options))
    db.session.commit()
    click.echo(f"updated topic {topic.slug}")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def list_(as_json: bool) -> None:
    """List topics."""
    rows = topics.all_topics(db.session)
    if as_json:
        click.echo(json.dumps([topics.as_dict(t) for t in rows]))
        return
    for t in rows:  # slug, then the name in nl, fr and en (tab-separated)
        click.echo("\t".join([t.slug, *(t.name_in(lang) for lang in LANGUAGES)]))
