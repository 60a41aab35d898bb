"""CLI command groups, one module per domain area, all registered on the app."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from prefsvc.commands import admins, campaigns, contacts, ops, privacy, topics

    for group in (topics.group, contacts.group, campaigns.group, *privacy.groups, admins.group):
        app.cli.add_command(group)
    for command in ops.commands:
        app.cli.add_command(command)
