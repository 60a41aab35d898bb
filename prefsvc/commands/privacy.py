"""Privacy commands: ``contacts export|erase``, ``ledger verify``, ``retention run``, ``rights``."""

from __future__ import annotations

import json

import click

from prefsvc import clock
from prefsvc.commands.contacts import group as contacts_group
from prefsvc.commands.group import DomainGroup
from prefsvc.consent import ledger
from prefsvc.extensions import db
from prefsvc.mail import notices
from prefsvc.models import LANGUAGES, RightsKind, RightsStatus
from prefsvc.people import contacts
from prefsvc.people.importing import jobs as import_jobs
from prefsvc.privacy import access, erasure, rectification, register, retention
from prefsvc.queue import broker
from prefsvc.settings import current_settings

ledger_group = DomainGroup("ledger", help="The hash-chained consent ledger.")
retention_group = DomainGroup("retention", help="Anonymisation after the marketing window.")
rights_group = DomainGroup("rights", help="The register of data-subject requests.")
groups = [ledger_group, retention_group, rights_group]


@contacts_group.command("export")
@click.argument("email")
@click.option(
    "--format",
    "form",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="json: the complete document; text: the same, readable, in the person's language.",
)
@click.option("--language", type=click.Choice(LANGUAGES), help="Language of the text version.")
def export(email: str, form: str, language: str | None) -> None:
    """Print everything held about a person (the access export), as JSON or readable text."""
    settings = current_settings()
    contact = contacts.get(db.session, email)
    document = access.export(db.session, contact, settings=settings, now=clock.now())
    language = language or contact.language.value
    db.session.commit()
    if form == "text":
        click.echo(access.export_text(document, language=language, tz=settings.timezone), nl=False)
    else:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@contacts_group.command("rectify")
@click.argument("email")
@click.option("--first-name", help="Correct the first name ('' clears it).")
@click.option("--last-name", help="Correct the last name ('' clears it).")
@click.option("--organisation", help="Correct the organisation ('' clears it).")
@click.option("--language", type=click.Choice(LANGUAGES), help="Correct the language.")
@click.option("--request", "request_id", type=int, help="Close this verified request as done.")
@click.option("--by", "handled_by", help="Who handled the request (with --request).")
def rectify(email: str, request_id: int | None, handled_by: str | None, **fields) -> None:
    """Correct a person's details and mail them an overview of the change (old -> new)."""
    settings = current_settings()
    session = db.session
    contact = contacts.get(session, email)
    request = _open_request(session, request_id, RightsKind.RECTIFICATION, handled_by)
    changes = {name: value for name, value in fields.items() if value is not None}
    if not changes:
        raise click.UsageError(
            "give at least one of --first-name, --last-name, --organisation, --language"
        )
    now = clock.now()
    changed = rectification.rectify(session, contact, changes, now=now, channel="request")
    if request is not None:
        register.close(session, request, now=now, handled_by=handled_by)
    if changed:  # the confirmation is held with the correction: both are committed, or neither
        notices.hold(
            session,
            rectification.NOTICE,
            contact.id,
            rectification.confirmation_params(settings, changed, now=now),
            now=now,
        )
    session.commit()
    if not changed:
        click.echo(f"contact {contact.public_id}: nothing to correct, every value was already so")
        return
    broker.queue().jobs_held()
    broker.queue().join(timeout_ms=60_000)
    for name, (old, new) in changed.items():
        click.echo(f"{name}: {old!r} -> {new!r}")
    click.echo(
        f"contact {contact.public_id} corrected; confirmation (old -> new) queued to the person"
    )


def _open_request(session, request_id: int | None, kind: RightsKind, handled_by: str | None):
    """Return the verified request a command closes, checked before anything changes."""
    if request_id is None:
        return None
    if not handled_by:
        raise click.UsageError("--request needs --by NAME (who handled it)")
    request = register.get_request(session, request_id)
    if request.kind is not kind:
        raise click.ClickException(f"request {request_id} is a {request.kind.value} request")
    if request.status is not RightsStatus.VERIFIED:
        raise click.ClickException(
            f"request {request_id} is {request.status.value}: verify the requester's identity first"
        )
    return request


@contacts_group.command("erase")
@click.argument("email")
def erase(email: str) -> None:
    """Erase a person's data; a keyed hash keeps the address from ever being mailed again."""
    contact = contacts.get(db.session, email)
    result = erasure.erase(db.session, contact, settings=current_settings(), now=clock.now())
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
        inbound_keep_days=settings.inbound_keep_days,
        webhook_log_days=settings.webhook_log_days,
        import_keep_days=settings.import_keep_days,
        import_files=import_jobs.folder(settings.instance_path),
        address_key=settings.suppression_key,
    )
    db.session.commit()
    click.echo(json.dumps(report.as_dict(), indent=2))


@rights_group.command("open")
@click.argument("kind", type=click.Choice([k.value for k in RightsKind]))
@click.argument("email", required=False)
@click.option("--note", help="Free text for staff (cleared if the person is erased).")
def open_(kind: str, email: str | None, note: str | None) -> None:
    """Register a request as received today; prints its id and due date."""
    settings = current_settings()
    contact = contacts.get(db.session, email) if email else None
    request = register.open_request(
        db.session, kind, now=clock.now(), settings=settings, contact=contact, note=note
    )
    db.session.commit()
    click.echo(f"request {request.id} ({kind}) received, due {request.due_on.isoformat()}")


@rights_group.command("verify")
@click.argument("request_id", type=int)
@click.option("--how", required=True, help="How identity was checked, e.g. 'call-back', 'eid'.")
def verify_request(request_id: int, how: str) -> None:
    """Record that the requester's identity was checked, how and when."""
    request = register.get_request(db.session, request_id)
    register.mark_verified(db.session, request, now=clock.now(), verification=how[:64])
    db.session.commit()
    click.echo(f"request {request.id}: identity verified ({request.verification})")


@rights_group.command("close")
@click.argument("request_id", type=int)
@click.option("--by", "handled_by", required=True, help="Who handled the request.")
@click.option("--refuse", is_flag=True, help="Close it as refused instead of done.")
@click.option("--note", help="Why (kept with the request).")
def close_request(request_id: int, handled_by: str, refuse: bool, note: str | None) -> None:
    """Close a request as done (identity verified first) or refused."""
    request = register.get_request(db.session, request_id)
    register.close(
        db.session, request, now=clock.now(), handled_by=handled_by, refused=refuse, note=note
    )
    db.session.commit()
    click.echo(f"request {request.id}: {request.status.value}")


@rights_group.command("list")
@click.option("--open", "only_open", is_flag=True, help="Only requests not yet closed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def list_requests(only_open: bool, as_json: bool) -> None:
    """List the request register, newest first."""
    found = [register.request_summary(r) for r in register.entries(db.session, only_open=only_open)]
    if as_json:
        click.echo(json.dumps(found))
        return
    for r in found:
        verified = (
            f"verified {r['verified_at'][:10]} ({r['verification']})"
            if r["verified_at"]
            else "not verified"
        )
        click.echo(
            f"{r['id']}\t{r['kind']}\t{r['status']}\treceived {r['received_at'][:10]}"
            f"\tdue {r['due_on']}\t{verified}\t{r['handled_by'] or '-'}"
        )


@rights_group.command("overdue")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def overdue(as_json: bool) -> None:
    """List open requests past their due date."""
    late = [register.request_summary(r) for r in register.overdue(db.session, clock.today())]
    if as_json:
        click.echo(json.dumps(late))
        return
    for r in late:
        click.echo(f"{r['id']}\t{r['kind']}\t{r['status']}\tdue {r['due_on']}")
