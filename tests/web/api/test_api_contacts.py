"""GET /api/v1/contacts with the admin list's filters and sorts: the same people either way."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from prefsvc.access import staff
from prefsvc.consent import changes as consent
from prefsvc.models import Contact
from tests.factories import make_contact, make_topic
from tests.web.admin.conftest import sign_in

# The clock says 2026-03-10; windows last five years.
PEOPLE = [
    # email, language, anchor, topics, bounced
    ("ana@example.org", "nl", date(2021, 4, 2), ["nieuws"], False),  # window ends 2026-04-02
    ("bram@example.org", "nl", date(2025, 6, 1), ["nieuws", "promoties"], True),
    ("celine@example.org", "fr", date(2021, 3, 20), ["promoties"], False),  # ends 2026-03-20
    ("damien@example.org", "fr", date(2021, 2, 1), ["nieuws"], False),  # ended 2026-02-01
    ("emma@example.org", "en", date(2024, 1, 1), [], False),
    ("zoe@example.org", "fr", date(2025, 9, 1), ["nieuws"], False),  # leaves nieuws below
]


@pytest.fixture
def address_book(session, clock):
    made = {slug: make_topic(session, slug) for slug in ("nieuws", "promoties")}
    for email, language, anchor, topics, bounced in PEOPLE:
        make_contact(
            session,
            email,
            language=language,
            anchor=anchor,
            topics=[made[t] for t in topics],
            last_name=email.split("@")[0].capitalize(),
            bounced_at=datetime(2026, 3, 1, tzinfo=UTC) if bounced else None,
            bounce_code="5.1.1" if bounced else None,
        )
    zoe = session.scalar(select(Contact).where(Contact.email == "zoe@example.org"))
    consent.unsubscribe(
        session, zoe, made["nieuws"], channel="test", now=clock(), today=clock().date()
    )
    staff.create(session, "lotte", "een lang wachtwoord", "marketing", now=clock())
    session.commit()


def api_emails(client, headers, query: str) -> list[str]:
    response = client.get(f"/api/v1/contacts?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [c["email"] for c in response.get_json()["items"]]


@pytest.mark.all_databases
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("window_days=60", ["ana@example.org", "celine@example.org"]),
        ("window_days=14", ["celine@example.org"]),
        ("bounced=true", ["bram@example.org"]),
        ("language=fr&sort=name", ["celine@example.org", "damien@example.org", "zoe@example.org"]),
        ("sort=name&order=desc&language=nl", ["bram@example.org", "ana@example.org"]),
        ("sort=window&per_page=2", ["damien@example.org", "celine@example.org"]),
        ("sort=email&order=desc&page=2&per_page=4", ["bram@example.org", "ana@example.org"]),
        # mailable for a topic: subscribed to it, window still open, no bounce
        ("status=mailable&topic=nieuws&sort=email", ["ana@example.org"]),
        ("status=subscribed&language=fr&sort=email", ["celine@example.org", "damien@example.org"]),
    ],
)
def test_the_api_list_takes_the_admin_lists_filters_and_sorts(
    client, app, bearer, address_book, query, expected
):
    assert api_emails(client, bearer("marketing"), query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "window_days=60&sort=window",
        "bounced=1",
        "language=fr&sort=name&order=desc",
        "status=mailable&topic=promoties",
        "status=subscribed&topic=nieuws",
    ],
)
def test_a_filter_finds_the_same_people_in_the_api_and_the_admin_list(
    client, app, bearer, address_book, query
):
    admin = app.test_client()
    admin.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert sign_in(admin, "lotte", "een lang wachtwoord").status_code == 302
    page = admin.get(f"/admin/contacts/?{query}").get_data(as_text=True)
    listed = re.findall(r'<a href="/admin/contacts/[^"]+">([^<]+@example\.org)</a>', page)
    assert listed  # every query above finds somebody
    api_query = query.replace("bounced=1", "bounced=true")
    assert api_emails(client, bearer("marketing"), api_query) == listed


def test_without_a_sort_the_list_stays_oldest_first(client, bearer, address_book):
    assert api_emails(client, bearer("marketing"), "") == [p[0] for p in PEOPLE]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("window_days=-1", "window_days"),
        ("window_days=99999", "window_days"),
        ("window_days=soon", "window_days"),
        ("bounced=maybe", "bounced"),
        ("sort=age", "sort"),
        ("order=up", "order"),
        ("status=gone", "status"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(client, bearer, query, field):
    response = client.get(f"/api/v1/contacts?{query}", headers=bearer("marketing"))
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_the_openapi_document_describes_every_filter_and_sort(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    parameters = {p["name"]: p for p in spec["paths"]["/api/v1/contacts"]["get"]["parameters"]}
    for name in ("q", "topic", "language", "status", "window_days", "bounced", "sort", "order"):
        assert name in parameters
    assert parameters["sort"]["schema"]["enum"] == ["name", "email", "added", "window"]
    assert set(parameters["status"]["schema"]["enum"]) >= {"active", "mailable", "subscribed"}
    assert "ends within" in parameters["window_days"]["description"]
