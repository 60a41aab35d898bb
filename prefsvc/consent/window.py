"""The marketing window: pure calendar arithmetic plus the expiring/expired queries.

A contact may receive marketing mail on days before ``anchor + years`` (calendar years; an
anchor on 29 February expires on 28 February). The anchor is the latest of the import's
``basis_date``, an explicit consent or re-permission and any preference change by the person.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def add_years(day: date, years: int) -> date:
    """Return the same calendar day ``years`` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a year that has none
        return day.replace(year=day.year + years, day=28)


def expires_on(anchor: date, years: int) -> date:
    """Return the first day on which marketing mail may no longer be sent."""
    return add_years(anchor, years)


def is_open(anchor: date, years: int, on: date) -> bool:
    """Tell whether marketing mail may go to a contact with this anchor on day ``on``."""
    return on < expires_on(anchor, years)


def last_expired_anchor(on: date, years: int) -> date:
    """Return the latest anchor whose window has ended by day ``on``.

    ``expires_on`` never decreases as the anchor grows, so "window ended" is the same as
    ``anchor <= last_expired_anchor(on)``: one indexable comparison in SQL.
    """
    candidate = add_years(on, -years)
    while expires_on(candidate, years) > on:
        candidate -= timedelta(days=1)
    while expires_on(candidate + timedelta(days=1), years) <= on:
        candidate += timedelta(days=1)
    return candidate


def later_anchor(current: date | None, proposed: date | None) -> date | None:
    """Return the anchor after a new basis: an anchor never moves backwards."""
    if current is None:
        return proposed
    if proposed is None:
        return current
    return max(current, proposed)


def local_today(now: datetime, tz: ZoneInfo) -> date:
    """Return the calendar date of the aware instant ``now`` in the service's time zone."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(tz).date()
