"""The ``prefsvc`` command: a Flask CLI group whose commands are thin over the domain modules.

Every command exits 0 on success and non-zero with one line on stderr on failure.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup
from sqlalchemy.exc import OperationalError

from prefsvc.errors import PrefsvcError
from prefsvc.settings import Settings, SettingsError


class DomainGroup(AppGroup):
    """A command group that turns domain and database errors into one-line CLI errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PrefsvcError as exc:
            raise click.ClickException(str(exc)) from None
        except OperationalError as exc:
            raise click.ClickException(f"database: {exc.orig or exc}".splitlines()[0]) from None


def _factory() -> Flask:
    from prefsvc import create_app

    return create_app()


def main() -> None:
    """Entry point of the ``prefsvc`` console script."""
    try:
        Settings.from_env()
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    group = FlaskGroup(create_app=_factory, add_version_option=False, load_dotenv=False)
    try:
        group.main(prog_name="prefsvc")
    except Exception as exc:  # last resort: never show a traceback to an operator
        if os.environ.get("PREFSVC_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(f"Error: {type(exc).__name__}: {first}", err=True)
        sys.exit(1)


def init_app(app: Flask) -> None:
    from prefsvc.commands import register

    register(app)
