"""A Dutch marketer imports a Dutch-headed CSV with the labels the admin itself shows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from prefsvc.access import staff
from prefsvc.models import Contact, ContactStatus, Role
from tests.e2e.conftest import DESKTOP
from tests.factories import make_contact, make_topic

# Headers and values as a Dutch training manager types them: no column is named as in CONTRACT §4.
CSV = (
    "E-mailadres;Voornaam;Achternaam;Taal;Rol;Onderwerpen;Grondslag;Datum grondslag\n"
    "nele@example.org;Nele;Nieuw;Nederlands;docent;nieuwe-opleidingen;toestemming;2026-02-01\n"
    "lucie@example.org;Lucie;Martin;Frans;cursist;nieuwe-opleidingen;opleiding;2026-02-15\n"
    "weg@example.org;Wim;Weg;nl;klant;nieuwe-opleidingen;klant;2026-02-01\n"
    "geen-adres;Jan;;nl;;;;\n"
)


@pytest.fixture
def office(session, clock):
    make_topic(session, "nieuwe-opleidingen", "Nieuwe opleidingen")
    make_contact(session, "weg@example.org", status=ContactStatus.UNSUBSCRIBED)
    staff.create(session, "lotte", "een lang wachtwoord", "marketing", now=clock())
    session.commit()


def test_a_dutch_csv_with_dutch_role_labels_is_mapped_previewed_and_imported_in_dutch(
    live_server, new_page, axe, office, session
):
    page = new_page(viewport=DESKTOP, locale="nl-BE")
    page.goto(f"{live_server}/admin/login")
    page.get_by_label("Gebruikersnaam").fill("lotte")
    page.get_by_label("Wachtwoord").fill("een lang wachtwoord")
    page.get_by_role("button", name="Aanmelden").click()
    page.wait_for_url(f"{live_server}/admin/")

    page.get_by_role("link", name="Importeren").click()
    page.get_by_label("CSV-bestand").set_input_files(
        files=[{"name": "cursisten.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.get_by_role("button", name="Opladen").click()
    # every Dutch header is recognised: the columns step proposes our fields for them
    assert page.get_by_label("E-mailadres").input_value() == "email"
    assert page.get_by_label("Voornaam").input_value() == "first_name"
    assert page.get_by_label("Rol").input_value() == "role"
    assert page.get_by_label("Datum grondslag").input_value() == "basis_date"
    assert axe(page) == []

    page.get_by_role("button", name="Voorbeeld van de import").click()
    page.get_by_role("heading", name="Geweigerde rijen").wait_for(timeout=20_000)
    body = page.locator("main").inner_text()
    # only the row without an address is refused, and why is said in Dutch
    assert "is geen geldig e-mailadres" in body
    assert "must be one of" not in body and "is not a valid address" not in body
    # the person who unsubscribed from everything stays out, and the preview says so
    assert "de persoon schreef zich overal voor uit" in body
    figures = dict(
        zip(
            page.locator("dl.figures dt").all_inner_texts(),
            page.locator("dl.figures dd").all_inner_texts(),
            strict=True,
        )
    )
    assert figures["Nieuwe contacten"] == "2"
    assert axe(page) == []
    assert session.scalar(select(Contact).where(Contact.email == "nele@example.org")) is None

    page.get_by_role("button", name="Deze rijen importeren").click()
    page.get_by_role("heading", name="Import klaar: cursisten.csv").wait_for(timeout=20_000)
    session.expire_all()
    nele = session.scalar(select(Contact).where(Contact.email == "nele@example.org"))
    lucie = session.scalar(select(Contact).where(Contact.email == "lucie@example.org"))
    assert (nele.role, nele.language) == (Role.TEACHER, "nl")
    assert (lucie.role, lucie.language) == (Role.TRAINEE, "fr")
    weg = session.scalar(select(Contact).where(Contact.email == "weg@example.org"))
    assert weg.status is ContactStatus.UNSUBSCRIBED
