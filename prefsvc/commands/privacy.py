"""Privacy commands: ``contacts export|erase``, ``ledger verify``, ``retention run``, ``rights``."""

from __future__ import annotations

import json

import click

from prefsvc import clock, contacts, ledger, retention, rights
from prefsvc.cli import DomainGroup
from prefsvc.commands.contacts import group as contacts_group
from prefsvc.extensions import db
from prefsvc.settings import current_settings

ledger_group = DomainGroup("ledger", help="The hash-chained consent ledger.")
retention_group = DomainGroup("retention", help="Anonymisation after the marketing window.")
rights_group = DomainGroup("rights", help="The register of data-subject requests.")
groups = [ledger_group, retention_group, rights_group]


@contacts_group.command("export")
@click.argument("email")
def export(email: str) -> None:
    """Print everything held about a person (the access export) as JSON."""
    contact = contacts.get(db.session, email)
    document = rights.export(db.session, contact, settings=current_settings(), now=clock.now())
    db.session.commit()
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@contacts_group.command("erase")
@click.argument("email")
def erase(email: str) -> None:
    """Erase a person's data; a keyed hash keeps the address from ever being mailed again."""
    contact = contacts.get(db.session, email)
    result = rights.erase(db.session, contact, settings=current_settings(), now=clock.now())
    db.session.commit()
    line = f"erased contact {result.public_id}; address suppressed"
    if result.kept:
        until = f" until {result.until.isoformat()}" if result.until else ""
        line += f"; kept {', '.join(result.kept)} (legal hold: {result.reason}{until})"
    click.echo(line)


@ledger_group.command("verify")
def verify() -> None:
    """Check the whole hash chain; exit non-zero naming the first event that does not fit."""
    result = ledger.verify(db.session)
    db.session.rollback()
    if not result.ok:
        raise click.ClickException(
            f"ledger broken at seq {result.first_bad_seq}: {result.problem} "
            f"({result.checked} events verified before it)"
        )
    click.echo(f"ledger intact: {result.checked} events, head {result.head_hash}")


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="List what would change and change nothing.")
def run(dry_run: bool) -> None:
    """Anonymise contacts whose marketing window ended more than the grace period ago."""
    settings = current_settings()
    report = retention.run(
        db.session,
        today=clock.today(),
        now=clock.now(),
        years=settings.marketing_window_years,
        grace_days=settings.retention_grace_days,
        dry_run=dry_run,
    )
    db.session.commit()
    click.echo(json.dumps(report.as_dict(), indent=2))


@rights_group.command("overdue")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def overdue(as_json: bool) -> None:
    """List open requests past their due date."""
    late = [rights.request_summary(r) for r in rights.overdue(db.session, clock.today())]
    if as_json:
        click.echo(json.dumps(late))
        return
    for r in late:
        click.echo(f"{r['id']}\t{r['kind']}\t{r['status']}\tdue {r['due_on']}")
