"""The words an import understands: column names and values in Dutch, French and English.

Staff export their spreadsheets with the headers of their own language ("E-mailadres",
"Prénom") and fill in the values our own pages show them ("docent", "consentement"): both
are accepted, compared without case, accents or punctuation. The stored values stay the
codes (``teacher``, ``consent``, ``nl``). The labels the admin pages show for each code
(the nl/fr catalogs) are among the accepted words; ``tests/people/importing`` checks that.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from prefsvc.models import Basis, Language, Role

FIELDS = (
    "email",
    "first_name",
    "last_name",
    "language",
    "organisation",
    "role",
    "topics",
    "basis",
    "basis_date",
)
TEXT_FIELDS = ("first_name", "last_name", "organisation")

HEADERS: dict[str, tuple[str, ...]] = {
    "email": (
        "email", "e-mail", "e-mailadres", "e-mail adres", "emailadres", "mailadres",
        "email address", "e-mail address", "courriel", "adresse e-mail", "adresse email",
        "adresse mail", "adresse courriel", "adresse électronique",
    ),
    "first_name": ("first_name", "first name", "firstname", "given name", "voornaam", "prénom"),
    "last_name": (
        "last_name", "last name", "lastname", "surname", "family name", "achternaam",
        "familienaam", "naam", "nom", "nom de famille",
    ),
    "organisation": (
        "organisation", "organization", "organisatie", "bedrijf", "firma", "company",
        "entreprise", "société", "organisme",
    ),
    "language": ("language", "taal", "langue", "lang"),
    "role": ("role", "rol", "rôle"),
    "topics": (
        "topics", "topic", "onderwerpen", "onderwerp", "nieuwsbrieven", "newsletters",
        "sujets", "sujet", "thèmes",
    ),
    "basis": ("basis", "grondslag", "rechtsgrond", "base", "base légale", "legal basis"),
    "basis_date": (
        "basis_date", "basis date", "datum grondslag", "grondslag datum", "date de base",
        "date base", "datum", "date", "sinds", "depuis", "since",
    ),
}  # fmt: skip

VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "language": {
        Language.NL: ("nl", "nl-be", "nl-nl", "nederlands", "dutch", "néerlandais", "vlaams",
                      "flemish", "flamand"),
        Language.FR: ("fr", "fr-be", "fr-fr", "français", "french", "frans"),
        Language.EN: ("en", "en-gb", "en-us", "english", "engels", "anglais"),
    },
    "role": {
        Role.TRAINEE: ("trainee", "cursist", "deelnemer", "stagiaire", "participant",
                       "participante", "participant à une formation", "apprenant", "student"),
        Role.CUSTOMER: ("customer", "klant", "client", "cliente"),
        Role.TEACHER: ("teacher", "docent", "lesgever", "leraar", "lerares", "enseignant",
                       "enseignante", "formateur", "formatrice", "trainer"),
    },
    "basis": {
        Basis.CONSENT: ("consent", "toestemming", "consentement"),
        Basis.CUSTOMER: ("customer", "klant", "client", "aankoop", "achat", "purchase"),
        Basis.TRAINING: ("training", "opleiding", "formation", "inschrijving", "inscription",
                         "enrolment"),
    },
}  # fmt: skip


def folded(text: str) -> str:
    """Return ``text`` without case, accents, punctuation or extra spaces: "E-mail" -> "e mail"."""
    text = unicodedata.normalize("NFKD", text.strip().lstrip("\ufeff").casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


_HEADER_FIELD = {folded(word): name for name, words in HEADERS.items() for word in words}
_VALUE = {
    field: {folded(word): code for code, words in by_code.items() for word in words}
    for field, by_code in VALUES.items()
}


def field_for(header: str) -> str | None:
    """Return the field a column header names (in any of the three languages), or None."""
    return _HEADER_FIELD.get(folded(header))


def suggest(header: Sequence[str]) -> list[str | None]:
    """Return each column's field from its header; a field named twice keeps its first column."""
    taken: set[str] = set()
    columns: list[str | None] = []
    for cell in header:
        name = field_for(cell)
        if name in taken:
            name = None
        if name is not None:
            taken.add(name)
        columns.append(name)
    return columns


def checked_mapping(mapping: Sequence[str | None], width: int) -> list[str | None]:
    """Return a mapping chosen by a person, fitted to the header's width; unknown names ignored."""
    columns = [name if name in FIELDS else None for name in list(mapping)[:width]]
    columns += [None] * (width - len(columns))
    seen: set[str] = set()
    for index, name in enumerate(columns):
        if name in seen:
            columns[index] = None
        elif name is not None:
            seen.add(name)
    return columns


def value_code(field: str, text: str) -> str | None:
    """Return the code a value stands for in any of the three languages, or None if unknown."""
    return _VALUE[field].get(folded(text))
