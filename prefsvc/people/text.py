"""The one rule for single-line text people give us: names, organisations, topic names.

Control characters (C0 including tab and newline, DEL, C1, and the Unicode line and paragraph
separators) are refused, not stripped: a newline splits a row of the text export and a CSV
line, an ESC reaches the operator's terminal raw. Every entry point (CSV import, API, admin,
preference centre, CLI) stores these fields through a domain function that calls
``single_line``, so one rule answers everywhere, naming the field. Multi-line text (campaign
bodies) is not single-line and not checked here.
"""

from __future__ import annotations

import re

from prefsvc.errors import InvalidInput

CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
REASON = "may not contain control characters (line breaks, tabs, escapes)"


def single_line(field: str, value: str | None) -> str | None:
    """Return ``value`` unchanged, or raise ``InvalidInput(field)`` if it holds a control."""
    if value and CONTROLS.search(value):
        raise InvalidInput(field, REASON)
    return value
