"""The language a recipient picked on the page itself, which outranks the contact's own."""

from __future__ import annotations

from flask import request

from prefsvc.models import LANGUAGES


def explicit_language() -> str | None:
    """Return the language the person picked on the page (a ``?lang=`` link), if any."""
    chosen = request.args.get("lang")
    return chosen if chosen in LANGUAGES else None
