"""CSV contact import (CONTRACT §4): read the whole file first, then write in bulk.

The file is decoded and every row validated before anything touches the database, so a file
refused as a whole leaves nothing behind. Suppression is checked first and in bulk: an
address that objected or was erased is never (re)added. Existing contacts and topics are loaded
in chunks and new contacts, subscriptions and ledger events go in as one executemany each, so
10,000 rows take seconds, not one round trip per row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from prefsvc.addresses import normalise_email
from prefsvc.consent import ledger, suppression, window
from prefsvc.errors import ImportFileError, InvalidFields, InvalidInput, Suppressed
from prefsvc.models import (
    Basis,
    Contact,
    ContactStatus,
    EventKind,
    Language,
    Role,
    Subscription,
    SubscriptionStatus,
    Topic,
    new_public_id,
)
from prefsvc.people.text import single_line

CHUNK = 500  # addresses per IN (...) when looking up suppressions and existing contacts
MAX_TEXT = 200  # the length of the name and organisation columns
NOT_TEXT = "not a UTF-8 or Windows-1252 text file"
# C0 control characters other than tab, line feed, carriage return and form feed: binary data.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TEXT_COLUMNS = ("first_name", "last_name", "organisation")


@dataclass
class RowError:
    """Why one row was not imported; ``line`` is the physical line in the file (header: 1)."""

    line: int
    field: str
    reason: str


@dataclass(frozen=True)
class RowOutcome:
    """What the import did (or, on a dry run, would do) with one row, and why."""

    line: int
    action: str  # created, updated, unchanged, suppressed, rejected
    detail: str = ""


SUPPRESSED_LISTED = "the address is on the suppression list"
SUPPRESSED_STATUS = {
    ContactStatus.UNSUBSCRIBED: "the person unsubscribed from everything",
    ContactStatus.ERASED: "the person was erased",
    ContactStatus.ANONYMISED: "the contact was anonymised",
}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    suppressed: int = 0
    errors: list[RowError] = field(default_factory=list)
    outcomes: list[RowOutcome] = field(default_factory=list)

    def plan(self) -> list[RowOutcome]:
        """Return every row's outcome in file order, rejected rows with their reasons."""
        rejected = [RowOutcome(e.line, "rejected", f"{e.field}: {e.reason}") for e in self.errors]
        return sorted([*self.outcomes, *rejected], key=lambda o: (o.line, o.action))

    def summary(self) -> dict[str, int]:
        """Return the counts printed by ``contacts import`` (CONTRACT §4)."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "suppressed": self.suppressed,
        }


@dataclass
class _Row:
    """One valid row; ``None`` means the cell was empty (it never erases a stored value)."""

    line: int
    email: str
    first_name: str | None
    last_name: str | None
    organisation: str | None
    language: Language | None
    role: Role | None
    basis: Basis | None
    basis_date: date | None
    topics: list[Topic]


def import_csv(
    session: Session,
    data: bytes,
    *,
    filename: str,
    now: datetime,
    today: date,
    suppression_key: str,
    source: str = "cli",
    imported_by: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import contacts from CSV bytes; the caller commits.

    Raises ``ImportFileError`` (nothing written) when the file as a whole cannot be read.
    Provenance goes into every ledger event: the file name, the basis, the channel
    (``source``) and who ran it (``imported_by``).
    With ``dry_run`` everything is done inside a savepoint that is rolled back, so the counts
    are exactly those a real import would give and nothing is left pending.
    """
    text = decode(data)
    topics = {t.slug: t for t in session.scalars(select(Topic))}
    result = ImportResult()
    rows: list[_Row] = []
    for line, cells in _records(text):
        row = _validate(line, cells, topics, today, result.errors)
        if row is None:
            result.rejected += 1
        else:
            rows.append(row)

    savepoint = session.begin_nested() if dry_run else None
    try:
        _write(session, rows, result, filename, now, today, suppression_key, source, imported_by)
        session.flush()
    finally:
        if savepoint is not None:
            savepoint.rollback()
    return result


# --- reading ----------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """Return the file's text: UTF-8 (BOM optional), else Windows-1252; refuse anything else."""
    if b"\x00" in data:
        raise ImportFileError(NOT_TEXT)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:  # bytes Windows-1252 leaves undefined
            raise ImportFileError(NOT_TEXT) from None
    if _CONTROL.search(text):
        raise ImportFileError(NOT_TEXT)
    if not text.strip():
        raise ImportFileError("the file is empty")
    return text


def _delimiter(text: str) -> str:
    """Return ``;`` or ``,``, whichever the header (the first non-blank line) has more of."""
    header = text.lstrip().partition("\n")[0]
    return ";" if header.count(";") > header.count(",") else ","


def _records(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first physical line, {column: trimmed cell}) for every non-empty data row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    columns: list[str] | None = None
    next_line = 1
    try:
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = [name.strip().lstrip("\ufeff").lower() for name in cells]
                if "email" not in columns:
                    raise ImportFileError("the header has no 'email' column")
                continue
            record: dict[str, str] = {}
            for name, cell in zip(columns, cells, strict=False):
                record.setdefault(name, cell.strip())
            yield line, record
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    if columns is None:
        raise ImportFileError("the file is empty")


def _choice(enum: type[StrEnum], value: str) -> Any:
    if not value:
        return None
    try:
        return enum(value.lower())
    except ValueError:
        raise InvalidInput("", "must be one of " + ", ".join(m.value for m in enum)) from None


def _basis_date(value: str, today: date) -> date | None:
    if not value:
        return None
    if not _ISO_DATE.fullmatch(value):
        raise InvalidInput("", "is not a date (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("", "is not a valid date") from None
    if day > today:
        raise InvalidInput("", "is in the future")
    return day


def _topics(value: str, topics: dict[str, Topic]) -> list[Topic]:
    chosen: list[Topic] = []
    for slug in (part.strip().lower() for part in value.split("|")):
        if not slug:
            continue
        if slug not in topics:
            raise InvalidInput("", f"unknown topic '{slug}'")
        if topics[slug] not in chosen:
            chosen.append(topics[slug])
    return chosen


def _validate(
    line: int,
    cells: dict[str, str],
    topics: dict[str, Topic],
    today: date,
    errors: list[RowError],
) -> _Row | None:
    """Return the row's values, or None after adding one RowError per bad cell."""
    parsers = {
        "email": normalise_email,
        "language": lambda v: _choice(Language, v),
        "role": lambda v: _choice(Role, v),
        "basis": lambda v: _choice(Basis, v),
        "basis_date": lambda v: _basis_date(v, today),
        "topics": lambda v: _topics(v, topics),
        **{name: _text for name in TEXT_COLUMNS},
    }
    values: dict[str, Any] = {}
    bad = False
    for name, parse in parsers.items():
        try:
            values[name] = parse(cells.get(name, ""))
        except InvalidInput as exc:
            errors.append(RowError(line, name, exc.reason))
            bad = True
    return None if bad else _Row(line=line, **values)


def _text(value: str) -> str | None:
    single_line("", value)
    if len(value) > MAX_TEXT:
        raise InvalidInput("", f"is longer than {MAX_TEXT} characters")
    return value or None


# --- writing ----------------------------------------------------------------------------


@dataclass
class _NewContact:
    """A contact this file creates, kept as plain values until one bulk INSERT."""

    email: str
    first_name: str | None
    last_name: str | None
    organisation: str | None
    language: Language
    role: Role | None
    basis: Basis | None
    basis_date: date | None
    window_anchor: date
    status: ContactStatus = ContactStatus.ACTIVE


def _existing(session: Session, emails: list[str]) -> dict[str, Contact]:
    found: dict[str, Contact] = {}
    for start in range(0, len(emails), CHUNK):
        chunk = emails[start : start + CHUNK]
        query = (
            select(Contact)
            .where(Contact.email.in_(chunk))
            .options(selectinload(Contact.subscriptions))
        )
        found.update((c.email, c) for c in session.scalars(query))
    return found


def _insert(session: Session, new: list[_NewContact], now: datetime) -> dict[str, int]:
    """Insert new contacts with one executemany and return their ids by address.

    Without RETURNING the driver sends the rows in one go; reading the ids back in chunks is
    several times cheaper than an ORM object and a RETURNING per contact on PostgreSQL.
    """
    if not new:
        return {}
    session.execute(
        # render_nulls: every row the same columns, so one executemany, not runs of rows
        insert(Contact).execution_options(render_nulls=True),
        [
            {
                **vars(draft),
                "public_id": new_public_id(),
                "created_at": now,
                "updated_at": now,
            }
            for draft in new
        ],
    )
    emails = [draft.email for draft in new]
    ids: dict[str, int] = {}
    for start in range(0, len(emails), CHUNK):
        chunk = emails[start : start + CHUNK]
        query = select(Contact.email, Contact.id).where(Contact.email.in_(chunk))
        ids.update((email, id_) for email, id_ in session.execute(query))
    return ids


def _apply(contact: Contact | _NewContact, row: _Row) -> list[str]:
    """Update a contact from a later row; return the names of the stored values it changed.

    Only differing values are assigned, so an unchanged contact costs the flush nothing.
    """
    wanted: dict[str, Any] = {
        name: getattr(row, name)
        for name in (*TEXT_COLUMNS, "language", "role")
        if getattr(row, name) is not None
    }
    if row.basis_date is not None:
        # An older basis never replaces a newer one, and never moves the anchor backwards.
        if contact.basis_date is None or row.basis_date >= contact.basis_date:
            wanted["basis_date"] = row.basis_date
            wanted["basis"] = row.basis or contact.basis
        wanted["window_anchor"] = window.later_anchor(contact.window_anchor, row.basis_date)
    elif row.basis is not None and contact.basis is None:
        wanted["basis"] = row.basis
    changed: list[str] = []
    for name, value in wanted.items():
        if getattr(contact, name) != value:
            setattr(contact, name, value)
            changed.append(name)
    return changed


def _write(
    session: Session,
    rows: list[_Row],
    result: ImportResult,
    filename: str,
    now: datetime,
    today: date,
    suppression_key: str,
    source: str,
    imported_by: str | None,
) -> None:
    emails = list(dict.fromkeys(row.email for row in rows))
    suppressed: set[str] = set()
    for start in range(0, len(emails), CHUNK):
        # Chunked, because a bound parameter per address would pass the driver's limits
        # (32,766 on SQLite, 65,535 on PostgreSQL) in a large file.
        chunk = emails[start : start + CHUNK]
        suppressed |= suppression.suppressed_among(session, suppression_key, chunk)
    existing = _existing(session, [e for e in emails if e not in suppressed])
    new: dict[str, _NewContact] = {}
    # topic ids each contact has a subscription row for (subscribed or not), kept current
    # in memory so that no row needs a SELECT.
    known_topics = {
        email: {s.topic_id for s in contact.subscriptions} for email, contact in existing.items()
    }
    changes: list[tuple[str, _Row, list[Topic]]] = []
    for row in rows:
        contact = existing.get(row.email) or new.get(row.email)
        if row.email in suppressed or (
            contact is not None and contact.status is not ContactStatus.ACTIVE
        ):
            result.suppressed += 1
            why = (
                SUPPRESSED_LISTED if row.email in suppressed else SUPPRESSED_STATUS[contact.status]
            )
            result.outcomes.append(RowOutcome(row.line, "suppressed", why))
            continue
        if contact is None:
            new[row.email] = _NewContact(
                email=row.email,
                first_name=row.first_name,
                last_name=row.last_name,
                organisation=row.organisation,
                language=row.language or Language.NL,
                role=row.role,
                basis=row.basis,
                basis_date=row.basis_date,
                window_anchor=row.basis_date or today,
            )
            known_topics[row.email] = set()
            created, changed = True, []
        else:
            created, changed = False, _apply(contact, row)
        # Never resubscribe: a topic with any subscription row (even unsubscribed) is left alone.
        new_topics = [t for t in row.topics if t.id not in known_topics[row.email]]
        known_topics[row.email].update(t.id for t in new_topics)
        if created:
            result.created += 1
            result.outcomes.append(RowOutcome(row.line, "created"))
        elif changed or new_topics:
            result.updated += 1
            what = [*changed, *(f"+{t.slug}" for t in new_topics)]
            result.outcomes.append(RowOutcome(row.line, "updated", ", ".join(what)))
        else:
            result.unchanged += 1
            result.outcomes.append(RowOutcome(row.line, "unchanged"))
            continue
        changes.append((row.email, row, new_topics))

    session.flush()  # the updated contacts
    ids = {email: contact.id for email, contact in existing.items()}
    ids.update(_insert(session, list(new.values()), now))
    events: list[ledger.NewEvent] = []
    subscriptions: list[dict[str, Any]] = []
    for email, row, new_topics in changes:
        contact_id = ids[email]
        detail = {
            "file": filename,
            "basis": row.basis.value if row.basis else None,
            "basis_date": row.basis_date.isoformat() if row.basis_date else None,
            "source": source,
            "topics": [t.slug for t in row.topics],
        }
        if imported_by:
            detail["by"] = imported_by
        events.append(ledger.NewEvent(contact_id, EventKind.IMPORTED, "import", detail=detail))
        for topic in new_topics:
            # What consent.subscribe(..., by_person=False) does for a topic without a
            # subscription row, minus its SELECT per call: the bookkeeping above knows.
            subscriptions.append(
                {
                    "contact_id": contact_id,
                    "topic_id": topic.id,
                    "status": SubscriptionStatus.SUBSCRIBED,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            events.append(
                ledger.NewEvent(contact_id, EventKind.SUBSCRIBED, "import", topic_id=topic.id)
            )
        contact = existing.get(email)
        if new_topics and contact is not None:
            session.expire(contact, ["subscriptions"])
    if subscriptions:
        # One executemany without RETURNING: several times cheaper than ORM objects.
        session.execute(insert(Subscription), subscriptions)
    ledger.append_many(session, events, now=now)


# --- one contact at a time (the API) ------------------------------------------------------


def upsert_one(
    session: Session,
    cells: dict[str, str],
    *,
    now: datetime,
    today: date,
    suppression_key: str,
    source: str,
    imported_by: str | None = None,
) -> str:
    """Create or update one contact with exactly the import's rules; return the outcome.

    ``cells`` holds the import's columns as text. The outcome is ``created``, ``updated`` or
    ``unchanged``; a suppressed, erased or objecting address raises ``Suppressed`` and bad
    values raise ``InvalidFields`` naming every bad field. The caller commits.
    """
    topics = {t.slug: t for t in session.scalars(select(Topic))}
    errors: list[RowError] = []
    row = _validate(1, cells, topics, today, errors)
    if row is None:
        fields: dict[str, list[str]] = {}
        for error in errors:
            fields.setdefault(error.field, []).append(error.reason)
        raise InvalidFields(fields)
    result = ImportResult()
    _write(session, [row], result, source, now, today, suppression_key, source, imported_by)
    session.flush()
    if result.suppressed:
        raise Suppressed("this address may not be added for marketing (it objected or was erased)")
    return "created" if result.created else "updated" if result.updated else "unchanged"
