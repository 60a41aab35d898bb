"""One rule for single-line text: control characters are refused, naming the field."""

from __future__ import annotations

import pytest

from prefsvc.errors import InvalidInput
from prefsvc.people import text

CONTROLS = ["\n", "\r", "\t", "\x00", "\x1b[31m", "\x7f", "\x85", "\x9b", "\u2028"]


@pytest.mark.parametrize("control", CONTROLS, ids=repr)
def test_single_line_refuses_every_control_character(control):
    with pytest.raises(InvalidInput) as caught:
        text.single_line("organisation", f"Haven{control}NV")
    assert caught.value.field == "organisation"
    assert "control characters" in caught.value.reason


@pytest.mark.parametrize("value", [None, "", "Amélie O'Brien-Ünal", "Ça va — 東京 ✓"])
def test_single_line_keeps_ordinary_text_as_it_is(value):
    assert text.single_line("first_name", value) == value


def test_the_cli_refuses_a_control_character_with_one_line_naming_the_field(runner, session):
    from tests.factories import make_contact

    created = runner.invoke(args=["topics", "create", "news", "--name", "News\x1b[2J"])
    assert created.exit_code == 1
    assert created.stderr.strip().splitlines() == [f"Error: name: {text.REASON}"]
    make_contact(session, "ana@example.org")
    session.commit()
    rectified = runner.invoke(
        args=["contacts", "rectify", "ana@example.org", "--organisation", "Haven\nNV"]
    )
    assert rectified.exit_code == 1
    assert rectified.stderr.strip().splitlines() == [f"Error: organisation: {text.REASON}"]
