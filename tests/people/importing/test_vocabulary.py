"""The words an import understands: headers and values in Dutch, French and English."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from prefsvc.people.importing import vocabulary

TRANSLATIONS = Path(__file__).resolve().parents[3] / "prefsvc" / "translations"


@pytest.mark.parametrize(
    "header, field",
    [
        ("E-mailadres", "email"),
        ("E-mail", "email"),
        ("Courriel", "email"),
        (" EMAIL ", "email"),
        ("Voornaam", "first_name"),
        ("Prénom", "first_name"),
        ("PRENOM", "first_name"),
        ("First Name", "first_name"),
        ("Achternaam", "last_name"),
        ("Nom", "last_name"),
        ("Organisatie", "organisation"),
        ("Société", "organisation"),
        ("Rol", "role"),
        ("Rôle", "role"),
        ("Taal", "language"),
        ("Langue", "language"),
        ("Onderwerpen", "topics"),
        ("Sujets", "topics"),
        ("Grondslag", "basis"),
        ("Basis_Date", "basis_date"),
        ("Notes", None),
    ],
)
def test_headers_in_three_languages_name_our_fields(header, field):
    assert vocabulary.field_for(header) == field


def test_a_field_named_twice_keeps_its_first_column():
    assert vocabulary.suggest(["Email", "Courriel", "Voornaam"]) == ["email", None, "first_name"]


@pytest.mark.parametrize(
    "field, words, code",
    [
        ("role", ["docent", "Enseignant", "TEACHER", "formateur"], "teacher"),
        ("role", ["cursist", "stagiaire", "trainee"], "trainee"),
        ("role", ["klant", "client", "Customer"], "customer"),
        ("basis", ["toestemming", "consentement", "consent"], "consent"),
        ("basis", ["opleiding", "formation", "training"], "training"),
        ("language", ["nederlands", "néerlandais", "Dutch", "NL", "nl-BE"], "nl"),
        ("language", ["Frans", "français", "francais", "FR"], "fr"),
        ("language", ["engels", "anglais", "English"], "en"),
    ],
)
def test_values_in_three_languages_stand_for_their_code(field, words, code):
    assert {vocabulary.value_code(field, word) for word in words} == {code}


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_every_label_our_pages_show_for_a_code_is_accepted(language):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale=language)
    for field, codes in (
        ("role", ("trainee", "customer", "teacher")),
        ("basis", ("consent", "customer", "training")),
    ):
        for code in codes:
            label = catalog.get(code).string
            assert vocabulary.value_code(field, label) == code, (language, label)


def test_a_mapping_chosen_by_hand_is_fitted_and_never_names_a_field_twice():
    assert vocabulary.checked_mapping(["email", "email", "bogus"], 4) == ["email", None, None, None]
