"""``prefsvc contacts``: import, show (export and erase live in ``commands.privacy``)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from prefsvc import clock
from prefsvc.commands.group import DomainGroup
from prefsvc.errors import ImportFileError
from prefsvc.extensions import db
from prefsvc.inbound import intake
from prefsvc.people import contacts, importing
from prefsvc.settings import current_settings

group = DomainGroup("contacts", help="People we may mail.")


@group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write nothing; list on stderr what each row would do (create, update, suppressed, "
    "rejected) and why.",
)
@click.option("--by", "imported_by", help="Who imports (recorded with each change); default: you.")
def import_(file: Path, dry_run: bool, imported_by: str | None) -> None:
    """Import contacts from a CSV file; prints a JSON summary, rejected rows on stderr.

    The file is streamed: rejected rows (and, with ``--dry-run``, what each row would do)
    are printed chunk by chunk as the import goes, each chunk committed on its own.
    """
    try:
        with file.open("rb"):
            pass
    except OSError as exc:
        raise ImportFileError(f"cannot read {file}: {exc.strerror or exc}") from None

    def report(chunk: importing.ImportResult, rows_done: int) -> None:
        if dry_run:
            for outcome in chunk.plan():  # rejected rows as in a real run: "line N: FIELD: …"
                verb = (
                    "" if outcome.action in ("rejected", "kept") else f"would be {outcome.action}"
                )
                detail = f": {outcome.detail}" if verb and outcome.detail else outcome.detail
                click.echo(f"line {outcome.line}: {verb}{detail}", err=True)
        else:
            for error in chunk.errors:
                click.echo(f"line {error.line}: {error.field}: {error.reason}", err=True)

    result = importing.import_file(
        db.session,
        file,
        filename=file.name,
        now=clock.now(),
        today=clock.today(),
        suppression_key=current_settings().suppression_key,
        source="cli",
        imported_by=imported_by or _operator(),
        dry_run=dry_run,
        max_bytes=current_settings().import_max_bytes,
        on_chunk=report,
    )
    click.echo(json.dumps(result.summary()))


def _operator() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return None


@group.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def show(email: str, as_json: bool) -> None:
    """Show a contact, their subscriptions, window expiry date and consent history."""
    contact = contacts.get(db.session, email)
    document = contacts.document(db.session, contact, current_settings().marketing_window_years)
    document["returned_mail"] = intake.kept_for_contact(db.session, contact.id)
    db.session.rollback()
    if as_json:
        click.echo(json.dumps(document, ensure_ascii=False))
        return
    name = " ".join(p for p in (document["first_name"], document["last_name"]) if p)
    click.echo(f"{document['email']}  {name}  ({document['language']}, {document['status']})")
    click.echo(
        f"  basis {document['basis'] or '-'} {document['basis_date'] or ''}".rstrip()
        + f"; window {document['window_anchor']} to {document['window_expires_on']}"
    )
    if document["paused_until"]:
        click.echo(f"  paused until {document['paused_until']}")
    bounce = document["bounce"]
    if bounce["bounced_at"]:
        when = bounce["bounced_at"][:16].replace("T", " ")
        code = f" {bounce['code']}" if bounce["code"] else ""
        click.echo(f"  bounced {when}{code}: {bounce['diagnostic'] or '-'}")
    elif bounce["soft_score"]:
        click.echo(
            f"  soft bounces: score {bounce['soft_score']} ({bounce['last_soft_bounce_on']})"
        )
    if bounce["complained_at"]:
        click.echo(f"  complained {bounce['complained_at'][:16].replace('T', ' ')}")
    for kept in document["returned_mail"]:
        when = kept["received_at"][:16].replace("T", " ")
        click.echo(f"  {when}  returned mail #{kept['id']}: {kept['kind']} ({kept['outcome']})")
    for sub in document["subscriptions"]:
        click.echo(f"  {sub['status']:<13}{sub['topic']}")
    for event in document["consent_history"]:
        topic = f" {event['topic']}" if event["topic"] else ""
        when = event["occurred_at"][:16].replace("T", " ")
        click.echo(f"  {when}  {event['kind']}{topic} ({event['channel']})")
