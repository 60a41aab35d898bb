"""The contact directory: filters, sorting and paging as the admin list and API use them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from werkzeug.datastructures import MultiDict

from prefsvc.consent import changes as consent
from prefsvc.errors import InvalidInput
from prefsvc.models import ContactStatus, SubscriptionStatus
from prefsvc.people import directory
from prefsvc.people.directory import Filters
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.all_databases

TODAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
YEARS = 5


def emails(session, filters: Filters, **paging) -> list[str | None]:
    found = directory.find(session, filters, today=TODAY, years=YEARS, **paging)
    return [c.email for c in found.items]


@pytest.fixture
def people(session):
    """Five contacts: subscribed, left a topic, objected, bounced, and an ending window."""
    courses = make_topic(session, "courses")
    offers = make_topic(session, "offers")
    make_contact(
        session, "ana@example.org", first_name="Ana", last_name="Peeters", topics=[courses]
    )
    left = make_contact(
        session,
        "bram@example.org",
        first_name="Bram",
        last_name="aerts",
        language="fr",
        topics=[courses, offers],
    )
    consent.unsubscribe(session, left, courses, channel="test", now=NOW, today=date(2026, 1, 1))
    objected = make_contact(
        session, "cleo@example.org", first_name="Cleo", last_name="Maes", topics=[offers]
    )
    consent.object_to_all(session, objected, channel="test", now=NOW, suppression_key="k" * 32)
    make_contact(
        session,
        "dirk@example.org",
        first_name="Dirk",
        last_name="Zeger",
        language="en",
        topics=[offers],
        bounced_at=NOW,
        bounce_code="5.1.1",
    )
    make_contact(  # the window (5 years) ends on 2026-03-25
        session, "eva@example.org", first_name="Eva", last_name=None, anchor=date(2021, 3, 25)
    )
    session.commit()


def test_filters_narrow_by_topic_language_status_bounce_and_window(session, people):
    assert emails(session, Filters(topic="courses")) == ["ana@example.org", "bram@example.org"]
    assert emails(session, Filters(topic="courses", status="subscribed")) == ["ana@example.org"]
    assert emails(session, Filters(topic="courses", status="unsubscribed")) == ["bram@example.org"]
    assert emails(session, Filters(status="unsubscribed")) == ["eva@example.org"]
    assert emails(session, Filters(status="suppressed")) == ["cleo@example.org"]
    assert emails(session, Filters(language="fr")) == ["bram@example.org"]
    assert emails(session, Filters(bounced=True)) == ["dirk@example.org"]
    assert emails(session, Filters(window_days=30)) == ["eva@example.org"]
    assert emails(session, Filters(window_days=10)) == []
    # "may be mailed" is the sending rule: not the objector, not the bounced address
    assert emails(session, Filters(status="mailable")) == [
        "ana@example.org",
        "bram@example.org",
        "eva@example.org",
    ]
    # with a topic, exactly whom a campaign to it would reach today: not who left it
    assert emails(session, Filters(topic="courses", status="mailable")) == ["ana@example.org"]
    assert emails(session, Filters(topic="offers", status="mailable")) == ["bram@example.org"]
    assert emails(session, Filters(q="PEET")) == ["ana@example.org"]
    assert emails(session, Filters(q="100%_")) == []


def test_sorting_by_name_address_added_and_window_end_keeps_empty_names_last(session, people):
    assert emails(session, Filters(sort="name")) == [
        "bram@example.org",  # "aerts": case does not matter
        "cleo@example.org",
        "ana@example.org",
        "dirk@example.org",
        "eva@example.org",  # no last name: last
    ]
    backwards = emails(session, Filters(sort="name", descending=True))
    assert backwards[0] == "dirk@example.org" and backwards[-1] == "eva@example.org"
    assert emails(session, Filters(sort="email", descending=True))[0] == "eva@example.org"
    assert emails(session, Filters(sort="window"))[0] == "eva@example.org"
    assert emails(session, Filters(sort="added")) == sorted(emails(session, Filters()))


def test_pages_cover_every_match_once(session):
    for n in range(23):
        make_contact(session, f"p{n:02d}@example.org", last_name="Same")
    session.commit()
    seen = []
    for page in (1, 2, 3):
        found = directory.find(
            session, Filters(sort="name"), today=TODAY, years=YEARS, page=page, per_page=10
        )
        assert (found.total, found.pages) == (23, 3)
        seen += [c.email for c in found.items]
    assert sorted(seen) == [f"p{n:02d}@example.org" for n in range(23)]


def test_the_query_string_is_checked_and_read():
    args = MultiDict(
        {"q": " ana ", "status": "suppressed", "window_days": "30", "bounced": "1", "order": "desc"}
    )
    filters = directory.parse(args)
    assert (filters.q, filters.status, filters.window_days, filters.bounced) == (
        "ana",
        "suppressed",
        30,
        True,
    )
    assert filters.descending and filters.sort == "added"
    assert filters.describe() == {
        "status": "suppressed",
        "window_days": 30,
        "bounced": True,
        "sort": "added",
        "descending": True,
        "search": True,
    }
    for bad in (
        {"status": "gone"},
        {"language": "de"},
        {"window_days": "-1"},
        {"window_days": "x"},
        {"window_days": "²"},
        {"window_days": "9" * 5000},
        {"sort": "password"},
        {"order": "up"},
    ):
        with pytest.raises(InvalidInput):
            directory.parse(MultiDict(bad))
    for bad in ({"page": "0"}, {"page": "x"}, {"page": "²"}, {"per_page": "7"}):
        with pytest.raises(InvalidInput):
            directory.page_numbers(MultiDict(bad))
    assert directory.page_numbers(MultiDict({"page": "3", "per_page": "100"})) == (3, 100)


def test_export_lists_the_filtered_contacts_with_their_topics_and_no_erased_ones(session, people):
    erased = make_contact(session, "gone@example.org")
    erased.email, erased.status = None, ContactStatus.ERASED
    session.commit()
    text = "".join(
        directory.csv_text(directory.export_rows(session, Filters(), today=TODAY, years=YEARS))
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["email"] for r in rows] == [
        "ana@example.org",
        "bram@example.org",
        "cleo@example.org",
        "dirk@example.org",
        "eva@example.org",
    ]
    assert rows[1]["topics"] == "offers" and rows[1]["language"] == "fr"
    assert rows[4]["window_ends_on"] == "2026-03-25"
    assert rows[3]["bounced_on"] == "2026-03-10"
    only_fr = directory.export_rows(session, Filters(language="fr"), today=TODAY, years=YEARS)
    assert [r[0] for r in only_fr] == ["bram@example.org"]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_export_neutralises_cells_a_spreadsheet_would_run(start):
    evil = f'{start}HYPERLINK("http://x")'
    text = "".join(directory.csv_text([["a@example.org", evil, "Peeters"]]))
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row == ["a@example.org", "'" + evil, "Peeters"]


def test_unsubscribed_subscription_rows_are_not_exported_as_topics(session, people):
    rows = list(directory.export_rows(session, Filters(q="bram"), today=TODAY, years=YEARS))
    assert rows[0][6] == "offers"
    assert SubscriptionStatus.UNSUBSCRIBED.value not in rows[0]


def test_the_demo_crowd_is_found_filtered_and_never_mailed_by_the_demo_campaign(session):
    from prefsvc import demo
    from prefsvc.people import topics

    for slug, names, descriptions in demo.TOPICS:
        topics.create(session, slug, names=names, descriptions=descriptions)
    assert demo.add_crowd(session, now=NOW, today=TODAY, count=300) == 300
    session.commit()
    everyone = directory.find(session, Filters(), today=TODAY, years=YEARS)
    assert everyone.total == 300 and everyone.pages == 6
    assert (
        directory.find(session, Filters(topic="nieuwe-opleidingen"), today=TODAY, years=YEARS).total
        == 0
    )
    assert directory.find(session, Filters(bounced=True), today=TODAY, years=YEARS).total == 4
    ended = directory.find(session, Filters(status="mailable"), today=TODAY, years=YEARS)
    assert ended.total == 296  # every window still open: only the bounced are left out
    found = directory.find(session, Filters(q="crowd.example.org .42@"), today=TODAY, years=YEARS)
    assert [c.email.split("@")[0].rsplit(".", 1)[1] for c in found.items] == ["42"]
