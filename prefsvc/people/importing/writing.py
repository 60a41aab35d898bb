"""Writing one chunk of valid rows: suppression first, in bulk, never resubscribing anyone.

Suppression is checked first, for the whole chunk in one query: an address that objected or
was erased is never (re)added. Existing contacts are loaded in one query, new contacts,
subscriptions and ledger events go in as one executemany each, so a chunk of 500 rows costs
a handful of statements, not one round trip per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from prefsvc.consent import ledger, suppression, window
from prefsvc.models import (
    Basis,
    Contact,
    ContactStatus,
    EventKind,
    Language,
    Role,
    Subscription,
    SubscriptionStatus,
    new_public_id,
)
from prefsvc.people.importing import rows as rules
from prefsvc.people.importing.rows import Row, RowError
from prefsvc.people.importing.vocabulary import TEXT_FIELDS

CHUNK = 500  # rows per transaction, and addresses per IN (...) of each look-up

SUPPRESSED = {
    ContactStatus.UNSUBSCRIBED: "unsubscribed_all",
    ContactStatus.ERASED: "erased",
    ContactStatus.ANONYMISED: "anonymised",
}


@dataclass(frozen=True)
class RowOutcome:
    """What the import did (or, on a dry run, would do) with one row, and why.

    ``action`` is created, updated, unchanged, suppressed or rejected; ``kept`` is a note on
    a row that is also imported (topics it stays unsubscribed from).
    """

    line: int
    action: str
    code: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False)
    field: str = ""  # the bad cell of a rejected row

    @property
    def detail(self) -> str:
        text = rules.english(self.code, self.params) if self.code else ""
        return f"{self.field}: {text}" if self.field else text


@dataclass
class ImportResult:
    """Counts of an import; ``errors`` and ``outcomes`` hold rows only where a caller keeps them."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    suppressed: int = 0
    errors: list[RowError] = field(default_factory=list)
    outcomes: list[RowOutcome] = field(default_factory=list)

    def plan(self) -> list[RowOutcome]:
        """Return every row's outcome in file order, rejected rows with their reasons."""
        rejected = [RowOutcome(e.line, "rejected", e.code, e.params, e.field) for e in self.errors]
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

    def add(self, other: ImportResult, *, keep_rows: bool) -> None:
        for name in self.summary():
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if keep_rows:
            self.errors.extend(other.errors)
            self.outcomes.extend(other.outcomes)


@dataclass
class _NewContact:
    """A contact this chunk creates, kept as plain values until one bulk INSERT."""

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
            {**vars(draft), "public_id": new_public_id(), "created_at": now, "updated_at": now}
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


def _apply(contact: Contact | _NewContact, row: Row) -> list[str]:
    """Update a contact from a later row; return the names of the stored values it changed.

    Only differing values are assigned, so an unchanged contact costs the flush nothing.
    """
    wanted: dict[str, Any] = {
        name: getattr(row, name)
        for name in (*TEXT_FIELDS, "language", "role")
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


def write(
    session: Session,
    rows: list[Row],
    result: ImportResult,
    *,
    filename: str,
    now: datetime,
    today: date,
    suppression_key: str,
    source: str,
    imported_by: str | None,
) -> None:
    """Write one chunk of valid rows and count what each did in ``result``; no commit."""
    emails = list(dict.fromkeys(row.email for row in rows))
    suppressed: set[str] = set()
    for start in range(0, len(emails), CHUNK):
        # Chunked, because a bound parameter per address would pass the driver's limits.
        suppressed |= suppression.suppressed_among(
            session, suppression_key, emails[start : start + CHUNK]
        )
    existing = _existing(session, [e for e in emails if e not in suppressed])
    new: dict[str, _NewContact] = {}
    # topic ids each contact has a subscription row for (subscribed or not), kept current
    # in memory so that no row needs a SELECT; and those it left.
    known_topics = {
        email: {s.topic_id for s in contact.subscriptions} for email, contact in existing.items()
    }
    left = {
        email: {
            s.topic_id for s in contact.subscriptions if s.status is SubscriptionStatus.UNSUBSCRIBED
        }
        for email, contact in existing.items()
    }
    changes: list[tuple[str, Row, list[Any]]] = []
    for row in rows:
        contact = existing.get(row.email) or new.get(row.email)
        if row.email in suppressed or (
            contact is not None and contact.status is not ContactStatus.ACTIVE
        ):
            result.suppressed += 1
            why = "listed" if row.email in suppressed else SUPPRESSED[contact.status]
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
        kept = [t.slug for t in row.topics if t.id in left.get(row.email, ())]
        if created:
            result.created += 1
            result.outcomes.append(RowOutcome(row.line, "created"))
        elif changed or new_topics:
            result.updated += 1
            what = ", ".join([*changed, *(f"+{t.slug}" for t in new_topics)])
            result.outcomes.append(RowOutcome(row.line, "updated", "changed", {"fields": what}))
        else:
            result.unchanged += 1
            result.outcomes.append(RowOutcome(row.line, "unchanged"))
        if kept:
            topics = ", ".join(kept)
            result.outcomes.append(
                RowOutcome(row.line, "kept", "stays_unsubscribed", {"topics": topics})
            )
        if created or changed or new_topics:
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
