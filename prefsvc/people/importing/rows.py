"""One CSV row checked: its values parsed, or every bad cell named with a code and parameters.

Problems are kept as codes and parameters, not sentences, so each reader gets them in their
own language: the admin pages translate ``MESSAGES`` (marked for the catalogs), the CLI and
the API say them in English (``english``). A ``detail`` parameter is a library's own English
explanation (email-validator's), added in English only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from prefsvc.addresses import MAX_EMAIL_LENGTH, normalise_email
from prefsvc.errors import InvalidInput
from prefsvc.models import Basis, Language, Role
from prefsvc.people.importing import vocabulary
from prefsvc.people.text import CONTROLS

MAX_TEXT = 200  # the length of the name and organisation columns
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def N_(message: str) -> str:  # noqa: N802 - the name pybabel extracts by default
    """Mark a message for the catalogs; the page translates it when it shows it."""
    return message


MESSAGES: dict[str, str] = {
    "empty": N_("is empty"),
    "invalid_email": N_("is not a valid address"),
    "too_long": N_("is longer than %(max)s characters"),
    "not_one_of": N_("must be one of %(allowed)s"),
    "not_a_date": N_("is not a date (YYYY-MM-DD)"),
    "invalid_date": N_("is not a valid date"),
    "future_date": N_("is in the future"),
    "unknown_topic": N_("unknown topic '%(topic)s'"),
    "control_characters": N_("may not contain control characters (line breaks, tabs, escapes)"),
    # why a valid row is not imported, or not all of it
    "listed": N_("the address is on the suppression list"),
    "unsubscribed_all": N_("the person unsubscribed from everything"),
    "erased": N_("the person was erased"),
    "anonymised": N_("the contact was anonymised"),
    "stays_unsubscribed": N_(
        "stays unsubscribed from %(topics)s: an import never subscribes someone again"
    ),
    "changed": "%(fields)s",
}


def english(code: str, params: dict[str, Any]) -> str:
    """Return a problem or outcome as the CLI and the API say it."""
    return render(code, params, lambda message: message, detail=True)


def render(
    code: str, params: dict[str, Any], translate: Callable[[str], str], *, detail: bool = False
) -> str:
    """Return a problem in the language ``translate`` speaks (a page's ``gettext``)."""
    values = {k: v for k, v in params.items() if k != "detail"}
    text = translate(MESSAGES.get(code, code))
    text = text % values if values else text
    if detail and params.get("detail"):
        text += f" ({params['detail']})"
    return text


@dataclass
class RowError:
    """Why one row was not imported; ``line`` is the physical line in the file (header: 1)."""

    line: int
    field: str
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return english(self.code, self.params)


class Problem(Exception):
    """A bad cell: ``code`` names the rule, ``params`` what the message needs."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class TopicRef:
    """A topic as the import needs it: plain values, untouched by the chunks' commits."""

    id: int
    slug: str


@dataclass
class Row:
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
    topics: list[TopicRef]


def _email(value: str) -> str:
    if not value.strip():
        raise Problem("empty")
    if len(value.strip()) > MAX_EMAIL_LENGTH:
        raise Problem("too_long", max=MAX_EMAIL_LENGTH)
    try:
        return normalise_email(value)
    except InvalidInput as exc:
        detail = exc.reason.partition("(")[2].rstrip(")")
        raise Problem("invalid_email", detail=detail) from None


def _choice(name: str, enum: type, value: str) -> Any:
    if not value:
        return None
    code = vocabulary.value_code(name, value)
    if code is None:
        raise Problem("not_one_of", allowed=", ".join(m.value for m in enum))
    return enum(code)


def _basis_date(value: str, today: date) -> date | None:
    if not value:
        return None
    if not _ISO_DATE.fullmatch(value):
        raise Problem("not_a_date")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Problem("invalid_date") from None
    if day > today:
        raise Problem("future_date")
    return day


def _topics(value: str, topics: dict[str, TopicRef]) -> list[TopicRef]:
    chosen: list[TopicRef] = []
    for slug in (part.strip().lower() for part in value.split("|")):
        if not slug:
            continue
        if slug not in topics:
            raise Problem("unknown_topic", topic=slug)
        if topics[slug] not in chosen:
            chosen.append(topics[slug])
    return chosen


def _text(value: str) -> str | None:
    if value and CONTROLS.search(value):
        raise Problem("control_characters")
    if len(value) > MAX_TEXT:
        raise Problem("too_long", max=MAX_TEXT)
    return value or None


def validate(
    line: int,
    cells: dict[str, str],
    topics: dict[str, TopicRef],
    today: date,
    errors: list[RowError],
) -> Row | None:
    """Return the row's values, or None after adding one RowError per bad cell."""
    parsers: dict[str, Callable[[str], Any]] = {
        "email": _email,
        "language": lambda v: _choice("language", Language, v),
        "role": lambda v: _choice("role", Role, v),
        "basis": lambda v: _choice("basis", Basis, v),
        "basis_date": lambda v: _basis_date(v, today),
        "topics": lambda v: _topics(v, topics),
        **{name: _text for name in vocabulary.TEXT_FIELDS},
    }
    values: dict[str, Any] = {}
    bad = False
    for name, parse in parsers.items():
        try:
            values[name] = parse(cells.get(name, ""))
        except Problem as problem:
            errors.append(RowError(line, name, problem.code, problem.params))
            bad = True
    return None if bad else Row(line=line, **values)
