"""Email addresses: the one canonical form every look-up, hash and import compares.

Addresses are stored lower-cased so that ``Ana@Example.org`` and ``ana@example.org`` are one
contact (a database constraint keeps it that way), and the suppression list hashes the same
form. Contacts, the import and the suppression list all need it, and none of them owns it.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from prefsvc.errors import InvalidInput

MAX_EMAIL_LENGTH = 254


def normalise_email(text: str) -> str:
    """Return the canonical (lower-case, IDNA-normalised) form of an address or raise."""
    candidate = (text or "").strip()
    if not candidate:
        raise InvalidInput("email", "is empty")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidInput("email", f"is longer than {MAX_EMAIL_LENGTH} characters")
    try:
        result = validate_email(candidate, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InvalidInput("email", f"is not a valid address ({exc})") from None
    return result.normalized.lower()
