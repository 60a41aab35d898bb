"""The command group of every ``prefsvc`` area: domain errors become one-line CLI errors."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy.exc import OperationalError

from prefsvc.errors import PrefsvcError


class DomainGroup(AppGroup):
    """A command group that turns domain and database errors into one-line CLI errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PrefsvcError as exc:
            raise click.ClickException(str(exc)) from None
        except OperationalError as exc:
            raise click.ClickException(f"database: {exc.orig or exc}".splitlines()[0]) from None
