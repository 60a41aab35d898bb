"""The nl/fr/en catalogs: complete, compiled, placeholders intact, in step with the sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "prefsvc" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
# Mail footers are rendered by other code and must exist in every language, extracted or not.
FOOTER = (
    "You are receiving this email because you are on the mailing list “%(topic)s”.",
    "Unsubscribe",
    "Manage your preferences",
)


def _po(language: str) -> Catalog:
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=language, ignore_obsolete=True)


def _template() -> Catalog:
    with open(TRANSLATIONS / "messages.pot", "rb") as handle:
        return read_po(handle, ignore_obsolete=True)


def _ids(catalog: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def _strings(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def test_template_holds_every_message_in_the_sources():
    with open(ROOT / "babel.cfg", encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    in_sources = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT, method_map, options_map
        )
    }
    missing = in_sources - _ids(_template())
    assert not missing, f"run pybabel extract and update (see babel.cfg): {sorted(missing)}"


def test_template_holds_the_mail_footer_messages():
    assert set(FOOTER) <= _ids(_template())


@pytest.mark.parametrize("language", ["nl", "fr"])
def test_every_message_is_translated(language):
    catalog = _po(language)
    untranslated = []
    for message_id in _ids(_template()):
        message = catalog.get(message_id)
        if message is None or message.fuzzy or not all(_strings(message.string)):
            untranslated.append(message_id)
    assert not untranslated, f"{language}: {sorted(untranslated)}"


def test_english_catalog_says_what_the_source_says():
    for message in _po("en"):
        if message.id:
            assert _strings(message.string) == _strings(message.id)


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_translations_keep_every_placeholder(language):
    for message in _po(language):
        if not message.id:
            continue
        expected = set(PLACEHOLDER.findall(" ".join(_strings(message.id))))
        for text in _strings(message.string):
            assert set(PLACEHOLDER.findall(text)) == expected, (language, message.id, text)


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_compiled_catalog_matches_its_po_file(language):
    po = _po(language)
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo", "rb") as handle:
        mo = read_mo(handle)
    wanted = {_strings(m.id): _strings(m.string) for m in po if m.id and not m.fuzzy}
    compiled = {_strings(m.id): _strings(m.string) for m in mo if m.id}
    assert compiled == wanted, f"run: pybabel compile -d {TRANSLATIONS.relative_to(ROOT)}"


HIGH_PUNCTUATION = re.compile(r"(?<=[\w)»”’])( ?)([:;?!])(?=$|\s)")


def test_french_puts_a_no_break_space_before_high_punctuation():
    """French typography: a narrow no-break space before ; ? ! and a no-break space before :."""
    wrong = []
    for message in _po("fr"):
        if not message.id:
            continue
        for text in _strings(message.string):
            if HIGH_PUNCTUATION.search(text):
                wrong.append(text)
    assert not wrong, wrong
