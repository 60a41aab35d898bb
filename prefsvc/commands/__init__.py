"""The ``prefsvc`` command: a Flask CLI group whose commands are thin over the domain modules.

One module per area; every command exits 0 on success and non-zero with one line on stderr on
failure.
"""

from __future__ import annotations

import os
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup

from prefsvc import create_app
from prefsvc.commands import (
    admins,
    apikeys,
    campaigns,
    contacts,
    inbound,
    ops,
    privacy,
    topics,
    webhooks,
)
from prefsvc.settings import Settings, SettingsError


def main() -> None:
    """Entry point of the ``prefsvc`` console script."""
    try:
        Settings.from_env()
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    group = FlaskGroup(create_app=create_app, add_version_option=False, load_dotenv=False)
    try:
        group.main(prog_name="prefsvc")
    except Exception as exc:  # last resort: never show a traceback to an operator
        if os.environ.get("PREFSVC_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(f"Error: {type(exc).__name__}: {first}", err=True)
        sys.exit(1)


def init_app(app: Flask) -> None:
    """Register every command group on the app's CLI."""
    groups = (
        topics.group,
        contacts.group,
        campaigns.group,
        *privacy.groups,
        admins.group,
        apikeys.group,
        inbound.group,
        webhooks.group,
    )
    for group in groups:
        app.cli.add_command(group)
    for command in ops.commands:
        app.cli.add_command(command)
