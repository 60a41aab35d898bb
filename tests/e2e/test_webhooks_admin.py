"""The webhooks page in a browser: an admin registers an endpoint at 360 px, axe finds nothing."""

from __future__ import annotations

from playwright.sync_api import expect

from prefsvc.access import staff
from tests.e2e.conftest import PHONE


def test_an_admin_registers_an_endpoint_on_a_phone(live_server, new_page, axe, session, clock):
    staff.create(session, "ines", "een lang genoeg wachtwoord", "admin", now=clock())
    session.commit()
    page = new_page(viewport=PHONE, locale="nl-BE")
    page.goto(f"{live_server}/admin/login")
    page.get_by_label("Gebruikersnaam").fill("ines")
    page.get_by_label("Wachtwoord").fill("een lang genoeg wachtwoord")
    page.get_by_role("button", name="Aanmelden").click()
    page.wait_for_url(f"{live_server}/admin/")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Adres (https://…)").fill("https://crm.example.org/hooks/prefsvc")
    page.get_by_role("button", name="Eindpunt registreren").click()
    assert page.locator("code.secret").inner_text().startswith("whsec_")
    expect(page.get_by_text("het wordt niet meer getoond")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert axe(page) == []
