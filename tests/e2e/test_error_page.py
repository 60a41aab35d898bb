"""A forged or truncated link opens a readable, accessible page, on a phone and a desktop."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_forged_link_shows_a_readable_page_without_axe_violations(
    live_server, new_page, axe, viewport
):
    page = new_page(viewport=viewport, locale="fr-BE")
    response = page.goto(f"{live_server}/u/not-a-real-token")
    assert response.status == 404
    expect(page.locator("h1")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert axe(page) == []
