"""The contact directory: filter, sort and page the address book, and export what it shows.

One query serves the admin's list, its CSV export and the API's list, so a filter means the
same thing everywhere. Paging is by offset: at 10,000 contacts an offset costs the database
a few milliseconds (``bench/directory.py`` prints the figures), and page numbers are what a
marketer used to Mailchimp expects to click.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select
from sqlalchemy.orm import Session, selectinload

from prefsvc import paging
from prefsvc.campaigns import audience
from prefsvc.consent import window
from prefsvc.errors import InvalidInput
from prefsvc.models import (
    LANGUAGES,
    Contact,
    ContactStatus,
    Language,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from prefsvc.people.importing import vocabulary

# What the status filter offers, each a plain condition on the contact (and the topic filter).
MAILABLE = "mailable"  # passes the sending rules today (audience), for the topic when one is given
SUBSCRIBED = "subscribed"  # active and receives the topic (any topic without a topic filter)
UNSUBSCRIBED = "unsubscribed"  # active, but left the topic (follows none without a filter)
SUPPRESSED = "suppressed"  # objected to all marketing or complained: on the suppression list
ACTIVE = "active"
ERASED = "erased"
ANONYMISED = "anonymised"
STATUSES = (MAILABLE, SUBSCRIBED, UNSUBSCRIBED, SUPPRESSED, ACTIVE, ERASED, ANONYMISED)
# The API's ``status`` names the stored ContactStatus; these are the same conditions.
FROM_CONTACT_STATUS = {
    ContactStatus.ACTIVE.value: ACTIVE,
    ContactStatus.UNSUBSCRIBED.value: SUPPRESSED,
    ContactStatus.ERASED.value: ERASED,
    ContactStatus.ANONYMISED.value: ANONYMISED,
}
# Every status the API's list takes: the stored ones, then the directory's two about sending.
API_STATUSES = {**FROM_CONTACT_STATUS, MAILABLE: MAILABLE, SUBSCRIBED: SUBSCRIBED}

SORTS = ("name", "email", "added", "window")
ID_ORDER = "id"  # the order contacts were stored in: the API's default, a stable paging order
PER_PAGE = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
MAX_WINDOW_DAYS = 3660
MAX_QUERY = 200
NUMBER = re.compile(r"[0-9]{1,7}")


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to and how it is ordered; empty values filter nothing."""

    q: str = ""
    topic: str | None = None
    language: str | None = None
    status: str | None = None
    window_days: int | None = None  # windows ending within this many days from today
    bounced: bool = False  # only addresses that bounced
    receiving: str | None = None  # only contacts subscribed to this topic slug (the API's topic)
    sort: str = "added"
    descending: bool = False

    def __post_init__(self) -> None:
        if len(self.q) > MAX_QUERY:
            raise InvalidInput("q", f"is longer than {MAX_QUERY} characters")
        if self.language is not None and self.language not in LANGUAGES:
            raise InvalidInput("language", f"must be one of {', '.join(LANGUAGES)}")
        if self.status is not None and self.status not in STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
        if self.window_days is not None and not 0 <= self.window_days <= MAX_WINDOW_DAYS:
            raise InvalidInput("window_days", f"must be a number from 0 to {MAX_WINDOW_DAYS}")
        if self.sort not in (*SORTS, ID_ORDER):
            raise InvalidInput("sort", f"must be one of {', '.join(SORTS)}")

    def describe(self) -> dict[str, Any]:
        """Return the filters for the audit log: never the search text (it may be a name)."""
        shown = {k: v for k, v in asdict(self).items() if k != "q" and v not in (None, "", False)}
        return {**shown, "search": bool(self.q.strip())}


def words(text: str | None) -> list[str]:
    """Split a search into at most five lower-case words."""
    return (text or "").strip().lower().split()[:5]


def containing(found: list[str]) -> ColumnElement[bool]:
    """Every word in the address, a name or the organisation, any case, ``%`` and ``_`` literal."""
    conditions = []
    for word in found:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = (Contact.email, Contact.first_name, Contact.last_name, Contact.organisation)
        conditions.append(or_(*(column.ilike(pattern, escape="\\") for column in columns)))
    return and_(*conditions)


def parse(args: Any) -> Filters:
    """Read filters from a query string (``request.args``); bad values raise InvalidInput."""

    def text(name: str) -> str | None:
        value = (args.get(name) or "").strip()
        return value or None

    days = text("window_days")
    if days is not None and not NUMBER.fullmatch(days):
        raise InvalidInput("window_days", f"must be a number from 0 to {MAX_WINDOW_DAYS}")
    order = text("order") or "asc"
    if order not in ("asc", "desc"):
        raise InvalidInput("order", "must be asc or desc")
    return Filters(
        q=text("q") or "",
        topic=text("topic"),
        language=text("language"),
        status=text("status"),
        window_days=int(days) if days is not None else None,
        bounced=text("bounced") in ("1", "on", "true", "yes"),
        sort=text("sort") or "added",
        descending=order == "desc",
    )


def page_numbers(args: Any) -> tuple[int, int]:
    """Read ``page`` (from 1) and ``per_page`` (one of PER_PAGE) from a query string."""
    page, per_page = (args.get("page") or "1").strip(), (args.get("per_page") or "").strip()
    if not NUMBER.fullmatch(page) or not 1 <= int(page) <= 1_000_000:
        raise InvalidInput("page", "must be a page number from 1")
    if per_page and (not NUMBER.fullmatch(per_page) or int(per_page) not in PER_PAGE):
        raise InvalidInput("per_page", f"must be one of {', '.join(map(str, PER_PAGE))}")
    return int(page), int(per_page) if per_page else DEFAULT_PER_PAGE


def subscribed_to(slug: str) -> ColumnElement[bool]:
    """The contact receives the topic with this slug."""
    topic_id = select(Topic.id).where(Topic.slug == slug).scalar_subquery()
    return _topic_subscription(topic_id, SubscriptionStatus.SUBSCRIBED)


def _topic_subscription(topic_id: Any, status: SubscriptionStatus | None) -> ColumnElement[bool]:
    """The contact has a subscription row (in ``status``) for the topic (any topic: None id)."""
    query = select(Subscription.id).where(Subscription.contact_id == Contact.id)
    if topic_id is not None:
        query = query.where(Subscription.topic_id == topic_id)
    if status is not None:
        query = query.where(Subscription.status == status)
    return query.exists()


def matching(filters: Filters, *, today: date, years: int) -> Select[tuple[Contact]]:
    """Select the contacts that pass every filter (unordered)."""
    query = select(Contact)
    found = words(filters.q)
    if found:
        query = query.where(containing(found))
    topic_id = None
    if filters.topic:
        topic_id = select(Topic.id).where(Topic.slug == filters.topic).scalar_subquery()
        query = query.where(_topic_subscription(topic_id, None))
    if filters.receiving:
        query = query.where(subscribed_to(filters.receiving))
    if filters.language:
        query = query.where(Contact.language == Language(filters.language))
    if filters.bounced:
        query = query.where(Contact.bounced_at.is_not(None))
    if filters.window_days is not None:
        ended = window.last_expired_anchor(today, years)
        ending = window.last_expired_anchor(today + timedelta(days=filters.window_days), years)
        query = query.where(
            Contact.status == ContactStatus.ACTIVE,
            Contact.window_anchor > ended,
            Contact.window_anchor <= ending,
        )
    if filters.status:
        query = query.where(_status(filters.status, topic_id, today=today, years=years))
    return query


def _status(status: str, topic_id: Any, *, today: date, years: int) -> ColumnElement[bool]:
    active = Contact.status == ContactStatus.ACTIVE
    if status == MAILABLE and topic_id is not None:
        # the sending rule itself: a campaign to this topic would go to them today
        return (
            select(Subscription.id)
            .where(
                Subscription.contact_id == Contact.id,
                Subscription.topic_id == topic_id,
                audience.exclusion_reason(today, years).is_(None),
            )
            .exists()
        )
    if status == MAILABLE:
        return audience.mailable(today, years)
    if status == SUBSCRIBED:
        return and_(active, _topic_subscription(topic_id, SubscriptionStatus.SUBSCRIBED))
    if status == UNSUBSCRIBED:
        return and_(active, not_(_topic_subscription(topic_id, SubscriptionStatus.SUBSCRIBED)))
    if status == SUPPRESSED:
        return Contact.status == ContactStatus.UNSUBSCRIBED
    return Contact.status == ContactStatus(status)


def ordering(filters: Filters) -> list[Any]:
    """Order by the chosen column, empty values last either way, then by id (unique)."""
    columns = {
        "name": [func.lower(Contact.last_name), func.lower(Contact.first_name)],
        "email": [Contact.email],
        "added": [Contact.created_at],
        "window": [Contact.window_anchor],
        ID_ORDER: [],
    }[filters.sort]
    if filters.descending:
        return [*(c.desc().nulls_last() for c in columns), Contact.id.desc()]
    return [*(c.asc().nulls_last() for c in columns), Contact.id]


@dataclass(frozen=True)
class Page:
    """One page of the directory; ``total`` counts every match."""

    items: list[Contact]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def find(
    session: Session,
    filters: Filters,
    *,
    today: date,
    years: int,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page:
    """Return page ``page`` of the contacts matching ``filters``, with their subscriptions."""
    items, total = paging.one_page(
        session,
        matching(filters, today=today, years=years),
        order_by=ordering(filters),
        page=page,
        per_page=per_page,
        options=[selectinload(Contact.subscriptions).joinedload(Subscription.topic)],
    )
    return Page(items, total, page, per_page)


def export_count(session: Session, filters: Filters, *, today: date, years: int) -> int:
    """Count the rows ``export_rows`` gives: the matches that still have an address."""
    query = matching(filters, today=today, years=years).where(Contact.email.is_not(None))
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


# --- export ------------------------------------------------------------------------------

# The import's columns first, so an export can be corrected and imported again.
EXPORT_COLUMNS = (
    *vocabulary.FIELDS,
    "status",
    "window_ends_on",
    "bounced_on",
    "added_on",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Make a cell that a spreadsheet would run as a formula plain text, with a leading ``'``."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def export_rows(
    session: Session, filters: Filters, *, today: date, years: int, batch: int = 500
) -> Iterator[list[str]]:
    """Yield one row per matching contact that still has an address, in the list's order.

    Erased and anonymised contacts have no personal data left and are not exported. The
    query is read in batches, so a large list never sits in memory whole.
    """
    query = (
        matching(filters, today=today, years=years)
        .where(Contact.email.is_not(None))
        .order_by(*ordering(filters))
        .options(selectinload(Contact.subscriptions).joinedload(Subscription.topic))
        .execution_options(yield_per=batch)
    )
    for contact in session.scalars(query):
        topics = sorted(
            s.topic.slug for s in contact.subscriptions if s.status is SubscriptionStatus.SUBSCRIBED
        )
        yield [
            contact.email or "",
            contact.first_name or "",
            contact.last_name or "",
            contact.language.value,
            contact.organisation or "",
            contact.role.value if contact.role else "",
            "|".join(topics),
            contact.basis.value if contact.basis else "",
            contact.basis_date.isoformat() if contact.basis_date else "",
            contact.status.value,
            window.expires_on(contact.window_anchor, years).isoformat(),
            contact.bounced_at.date().isoformat() if contact.bounced_at else "",
            contact.created_at.date().isoformat() if contact.created_at else "",
        ]


def csv_text(rows: Iterable[list[str]], *, chunk_rows: int = 200) -> Iterator[str]:
    """Write a header and ``rows`` as CSV (``,``, CRLF), each cell neutralised, in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for n, row in enumerate(rows, start=1):
        writer.writerow([neutralise(cell) for cell in row])
        if n % chunk_rows == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
