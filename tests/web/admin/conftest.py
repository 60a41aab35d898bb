"""Fixtures of the admin UI tests: an English-speaking browser, one account per role, a topic.

``sign_in`` and ``post`` fill in the CSRF token the way a browser does, from a page just loaded.
"""

from __future__ import annotations

import re

import pytest

from prefsvc.access import staff
from prefsvc.models import StaffRole
from tests.factories import make_topic

PASSWORD = "correct horse battery"


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, username: str, password: str = PASSWORD, **extra):
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    return client.post(
        "/admin/login",
        data={"csrf_token": token, "username": username, "password": password},
        **extra,
    )


def post(client, url: str, data: dict | None = None, *, form_page: str | None = None, **extra):
    """POST a form the way a browser does: with the CSRF token of a page just loaded."""
    token = csrf_token(client.get(form_page or "/admin/").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **(data or {})}, **extra)


@pytest.fixture
def client(app):
    """A browser that asks for English pages (the assertions below quote the English text)."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def accounts(session, clock):
    for role in StaffRole:
        staff.create(session, role.value, PASSWORD, role, now=clock())
    session.commit()


@pytest.fixture
def as_role(client, accounts):
    def sign(role: str):
        response = sign_in(client, role)
        assert response.status_code == 302
        return client

    return sign


@pytest.fixture
def topic(session):
    topic = make_topic(session, "nieuwe-opleidingen", "Nieuwe opleidingen")
    session.commit()
    return topic
