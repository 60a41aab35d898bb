"""``prefsvc contacts import`` and ``contacts show`` as an operator uses them."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from prefsvc.consent import changes as consent
from prefsvc.models import ConsentEvent, Contact, EventKind
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.all_databases

FILE = (
    "Email;First_Name;Language;Topics;Basis;Basis_Date\n"
    "ana@example.org;Ana;fr;promoties;training;2025-06-01\n"
    "nope;Bo;;;;\n"
    "cas@example.org;Cas;xx;;;\n"
    "dirk@example.org;Dirk;;;;\n"
)


@pytest.fixture
def promo(session):
    topic = make_topic(session, slug="promoties", name="Promoties")
    session.commit()
    return topic


def contacts_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Contact))


def write(tmp_path, content: str | bytes, name: str = "contacts.csv"):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def test_import_prints_summary_on_stdout_and_rejected_rows_on_stderr(
    runner, session, promo, tmp_path
):
    result = runner.invoke(args=["contacts", "import", str(write(tmp_path, FILE))])

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 2,
        "suppressed": 0,
    }
    first, second = result.stderr.splitlines()
    assert first.startswith("line 3: email: is not a valid address")
    assert second == "line 4: language: must be one of nl, fr, en"
    session.expire_all()
    assert contacts_count(session) == 2


def test_dry_run_prints_the_same_and_writes_nothing(runner, session, promo, tmp_path):
    path = write(tmp_path, FILE)

    dry = runner.invoke(args=["contacts", "import", str(path), "--dry-run"])
    session.expire_all()
    assert contacts_count(session) == 0
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0

    real = runner.invoke(args=["contacts", "import", str(path)])
    assert dry.exit_code == real.exit_code == 0
    assert dry.stdout == real.stdout
    rejected = [line for line in dry.stderr.splitlines() if "would be" not in line]
    assert rejected == real.stderr.splitlines()


def test_dry_run_lists_what_each_row_would_do_and_why(
    runner, session, promo, tmp_path, clock, settings
):
    make_contact(session, "dirk@example.org", first_name="D.")
    gone = make_contact(session, "eva@example.org")
    consent.object_to_all(
        session, gone, channel="web", now=clock(), suppression_key=settings.suppression_key
    )
    session.commit()
    path = write(tmp_path, FILE + "eva@example.org;Eva;;promoties;;\n")

    dry = runner.invoke(args=["contacts", "import", str(path), "--dry-run"])

    assert dry.exit_code == 0, dry.output
    assert dry.stderr.splitlines() == [
        "line 2: would be created",
        "line 3: email: is not a valid address (An email address must have an @-sign.)",
        "line 4: language: must be one of nl, fr, en",
        "line 5: would be updated: first_name",
        "line 6: would be suppressed: the address is on the suppression list",
    ]


def test_import_records_the_file_and_who_imported_it(runner, session, promo, tmp_path):
    path = write(tmp_path, FILE, name="leads-2025.csv")

    runner.invoke(args=["contacts", "import", str(path), "--by", "marketing: Jan"])

    [event] = session.scalars(
        select(ConsentEvent).where(ConsentEvent.kind == EventKind.IMPORTED).limit(1)
    )
    assert event.detail["file"] == "leads-2025.csv"
    assert (event.detail["basis"], event.detail["basis_date"]) == ("training", "2025-06-01")
    assert (event.detail["source"], event.detail["by"]) == ("cli", "marketing: Jan")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"email\nana@example.org\x00\n", "not a UTF-8 or Windows-1252 text file"),
        ("mail;name\nana@example.org;Ana\n", "no 'email' column"),
    ],
)
def test_a_refused_file_exits_non_zero_with_one_line_and_writes_nothing(
    runner, session, promo, tmp_path, content, reason
):
    result = runner.invoke(args=["contacts", "import", str(write(tmp_path, content))])

    assert result.exit_code != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert reason in result.stderr and "Traceback" not in result.stderr
    session.expire_all()
    assert contacts_count(session) == 0


@pytest.mark.parametrize("name", ["absent.csv", "."], ids=["missing", "directory"])
def test_an_unreadable_path_is_one_line_error(runner, tmp_path, promo, name):
    result = runner.invoke(args=["contacts", "import", str(tmp_path / name)])
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot read" in result.stderr


def test_show_json_has_contact_window_subscriptions_and_history(
    runner, session, promo, tmp_path, clock, settings
):
    runner.invoke(args=["contacts", "import", str(write(tmp_path, FILE))])
    ana = session.scalar(select(Contact).where(Contact.email == "ana@example.org"))
    consent.unsubscribe(
        session, ana, promo, channel="one-click", now=clock(), today=date(2026, 3, 10)
    )
    session.commit()

    result = runner.invoke(args=["contacts", "show", "ANA@example.org", "--json"])

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["email"] == "ana@example.org" and doc["public_id"] == ana.public_id
    assert (doc["first_name"], doc["language"], doc["status"]) == ("Ana", "fr", "active")
    assert (doc["basis"], doc["basis_date"]) == ("training", "2025-06-01")
    # unsubscribing is the person's own choice: it moves the anchor to that day
    assert doc["window_anchor"] == "2026-03-10"
    assert doc["window_expires_on"] == "2031-03-10"
    assert doc["subscriptions"] == [
        {"topic": "promoties", "name": "Promoties", "status": "unsubscribed"}
    ]
    history = doc["consent_history"]
    assert [(e["kind"], e["channel"], e["topic"]) for e in history] == [
        ("imported", "import", None),
        ("subscribed", "import", "promoties"),
        ("unsubscribed", "one-click", "promoties"),
    ]
    assert history[0]["detail"]["file"] == "contacts.csv"
    assert history[0]["occurred_at"].startswith("2026-03-10T09:30:00")


def test_show_without_json_is_readable(runner, session, promo):
    make_contact(session, "ana@example.org", first_name="Ana", last_name="Peeters")
    session.commit()

    result = runner.invoke(args=["contacts", "show", "ana@example.org"])

    assert result.exit_code == 0
    assert "ana@example.org" in result.stdout and "Ana Peeters" in result.stdout
    assert "2031-01-01" in result.stdout  # window expiry of the factory's 2026-01-01 anchor


def test_show_unknown_address_is_one_line_error(runner, promo):
    result = runner.invoke(args=["contacts", "show", "nobody@example.org", "--json"])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["Error: no contact with that address"]


def test_a_file_over_the_import_limit_is_refused_in_one_line(
    runner, app, session, promo, tmp_path, settings, monkeypatch
):
    from prefsvc.settings import SETTINGS_KEY

    monkeypatch.setitem(app.extensions, SETTINGS_KEY, settings.with_(import_max_bytes=50))
    result = runner.invoke(args=["contacts", "import", str(write(tmp_path, FILE))])

    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"Error: the file is {len(FILE.encode())} bytes, more than the import limit of 50 bytes"
        " (PREFSVC_IMPORT_MAX_BYTES)"
    ]
    assert contacts_count(session) == 0


def test_a_file_mixing_encodings_is_refused_naming_the_line(runner, session, promo, tmp_path):
    data = (FILE + "amelie@example.org;Amélie;;;;\n").encode() + "zoe@example.org;Zoé;;;;\n".encode(
        "cp1252"
    )
    result = runner.invoke(args=["contacts", "import", str(write(tmp_path, data))])

    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.startswith("Error: line 7: not valid UTF-8 (byte 0xE9)")
    assert contacts_count(session) == 0
