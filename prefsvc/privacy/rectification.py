"""Rectification: correct a person's details, and confirm the change with old -> new.

The privacy statement promises a correction with an overview of the change. The ledger
records only which fields changed, never the values; the overview mailed to the person lists
both, so it crosses the broker sealed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from prefsvc.consent import changes as consent
from prefsvc.errors import InvalidInput, InvalidToken
from prefsvc.mail import notices
from prefsvc.mail.notices import LANGUAGE_NAMES, N_, Notice
from prefsvc.mail.tokens import Sealer
from prefsvc.models import Contact, ContactStatus, EventKind, Language
from prefsvc.people.text import single_line
from prefsvc.settings import Settings

log = logging.getLogger(__name__)

RECTIFIABLE = ("first_name", "last_name", "organisation", "language")
MAX_NAME_LENGTH = 200


def rectify(
    session: Session,
    contact: Contact,
    changes: dict[str, str | None],
    *,
    now: datetime,
    channel: str,
) -> dict[str, tuple[str | None, str | None]]:
    """Apply corrections; return ``{field: (old, new)}`` of what changed, for the confirmation.

    The ledger records only which fields changed, never the values.
    """
    if contact.status in (ContactStatus.ERASED, ContactStatus.ANONYMISED):
        raise InvalidInput("contact", "has been erased; there is nothing left to correct")
    cleaned = {name: _clean(name, value) for name, value in changes.items()}
    changed: dict[str, tuple[str | None, str | None]] = {}
    for name, new in cleaned.items():
        old = getattr(contact, name)
        old = old.value if isinstance(old, Language) else old
        if old == new:
            continue
        setattr(contact, name, Language(new) if name == "language" else new)
        changed[name] = (old, new)
    if changed:
        consent.record(
            session,
            contact,
            EventKind.RECTIFIED,
            channel=channel,
            now=now,
            detail={"fields": sorted(changed)},
        )
    return changed


def _clean(name: str, value: str | None) -> str | None:
    if name not in RECTIFIABLE:
        raise InvalidInput(name, f"cannot be corrected here (only {', '.join(RECTIFIABLE)})")
    text = (value or "").strip() or None
    if name == "language":
        if text not in {lang.value for lang in Language}:
            raise InvalidInput(name, "must be nl, fr or en")
        return text
    if text is not None and len(text) > MAX_NAME_LENGTH:
        raise InvalidInput(name, f"is longer than {MAX_NAME_LENGTH} characters")
    return single_line(name, text)


# The confirmation lists old -> new: personal data, so it crosses the broker sealed, and a
# confirmation not sent within a week is dropped rather than sent stale.
NOTICE = "rectification_confirmed"
SEALED_MAX_AGE_SECONDS = 7 * 24 * 3600
FIELD_LABELS = {
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "organisation": N_("Organisation"),
    "language": N_("Language"),
}


def confirmation_params(
    settings: Settings, changes: dict[str, tuple[str | None, str | None]], *, now: datetime
) -> dict[str, str]:
    """Return the notice parameters of a rectification confirmation (old and new, sealed)."""
    sealed = Sealer(settings.secret_keys).seal({k: list(v) for k, v in changes.items()}, now=now)
    return {"changes": sealed}


def rectification_notice(
    contact: Contact, changes: dict[str, tuple[str | None, str | None]] | dict[str, list]
) -> Notice:
    """Build the overview of a correction, old -> new, in the person's (possibly new) language."""
    language = contact.language.value

    def shown(name: str, value: str | None) -> str:
        if value is None:
            return notices.translate(language, N_("(empty)"))
        return LANGUAGE_NAMES.get(value, value) if name == "language" else value

    lines = [
        (notices.translate(language, FIELD_LABELS[name]), shown(name, old), shown(name, new))
        for name in RECTIFIABLE
        if name in changes
        for old, new in [changes[name]]
    ]
    context = {"first_name": contact.first_name, "language": language, "lines": lines}
    return Notice(
        subject=notices.translate(language, N_("Your details have been corrected")),
        text=notices.render("rectification.txt", language, **context),
        html=notices.render("rectification.html", language, **context),
    )


def build_confirmation(
    session: Session, contact: Contact, settings: Settings, params: dict[str, Any], *, now: datetime
) -> Notice | None:
    """Build the confirmation ``NOTICE``; None once stale, or if the person was erased since."""
    try:
        changes = Sealer(settings.secret_keys).unseal(
            str(params.get("changes", "")), now=now, max_age_seconds=SEALED_MAX_AGE_SECONDS
        )
    except InvalidToken:
        log.warning("rectification confirmation for contact %s dropped: stale", contact.id)
        return None
    if not isinstance(changes, dict) or not set(changes) <= set(RECTIFIABLE):
        return None
    if contact.status in (ContactStatus.ERASED, ContactStatus.ANONYMISED):
        return None
    return rectification_notice(contact, changes)
