"""``prefsvc admins``: staff accounts of the admin UI (create, list, password, disable)."""

from __future__ import annotations

import json
import sys

import click

from prefsvc import clock
from prefsvc.access import staff
from prefsvc.commands.group import DomainGroup
from prefsvc.extensions import db
from prefsvc.models import StaffRole

group = DomainGroup("admins", help="Staff accounts of the admin UI at /admin/.")
ADVISED_PASSWORD_LENGTH = 12


@group.command("create")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in StaffRole]),
    help="What they may do.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create(username: str, role: str, password_stdin: bool) -> None:
    """Create a staff account; the password is asked with a hidden prompt."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = staff.create(db.session, username, password, role, now=clock.now())
    db.session.commit()
    if len(password) < ADVISED_PASSWORD_LENGTH:
        click.echo(
            f"warning: a password of {ADVISED_PASSWORD_LENGTH}+ characters is advised", err=True
        )
    click.echo(f"created {user.role.value} account {user.username}")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def list_(as_json: bool) -> None:
    """List staff accounts (never their password hashes)."""
    rows = staff.listing(db.session)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "username": r.username,
                        "role": r.role,
                        "active": r.active,
                        "created_at": r.created_at.isoformat(),
                        "last_login_at": r.last_login_at.isoformat() if r.last_login_at else None,
                    }
                    for r in rows
                ]
            )
        )
        return
    for r in rows:
        state = "active" if r.active else "disabled"
        last = r.last_login_at.isoformat(timespec="minutes") if r.last_login_at else "never"
        click.echo(f"{r.username}\t{r.role}\t{state}\tlast sign-in {last}")


@group.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def password(username: str, password_stdin: bool) -> None:
    """Change a password; every session signed in with the old one ends."""
    if password_stdin:
        new = sys.stdin.readline().rstrip("\r\n")
    else:
        new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    user = staff.change_password(db.session, username, new)
    db.session.commit()
    if len(new) < ADVISED_PASSWORD_LENGTH:
        click.echo(
            f"warning: a password of {ADVISED_PASSWORD_LENGTH}+ characters is advised", err=True
        )
    click.echo(f"changed the password of {user.username}")


@group.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Disable an account: it can no longer sign in and its open sessions end."""
    user = staff.disable(db.session, username)
    db.session.commit()
    click.echo(f"disabled {user.username}")
