"""The admin contact import over HTTP: a dry run first, then the same file committed."""

from __future__ import annotations

import io
import re

from prefsvc.consent import suppression
from prefsvc.models import SuppressionReason
from prefsvc.people import contacts
from tests.factories import make_contact
from tests.web.admin.conftest import post

CSV = (
    b"email;first_name;language;topics;basis;basis_date\n"
    b"new@example.org;Nieuw;nl;nieuwe-opleidingen;consent;2026-01-10\n"
    b"old@example.org;Oud;fr;nieuwe-opleidingen;consent;2026-01-10\n"
    b"erased@example.org;Weg;nl;nieuwe-opleidingen;consent;2026-01-10\n"
    b"not-an-address;X;nl;;;\n"
    b"bad@example.org;Y;de;;;\n"
)


def upload(client, data: bytes = CSV, name: str = "contacts.csv"):
    return post(
        client,
        "/admin/import",
        {"file": (io.BytesIO(data), name)},
        form_page="/admin/import",
        content_type="multipart/form-data",
    )


def test_import_previews_without_writing_then_commits(as_role, session, topic, settings):
    make_contact(session, "old@example.org", first_name="Old", language="fr")
    suppression.add(
        session, settings.suppression_key, "erased@example.org", SuppressionReason.ERASURE
    )
    session.commit()
    client = as_role("marketing")
    preview = upload(client)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert re.search(r"New contacts</dt><dd>1<", page)
    assert re.search(r"Updated</dt><dd>1<", page)
    assert re.search(r"Suppressed \(never re-added\)</dt><dd>1<", page)
    assert re.search(r"Rejected</dt><dd>2<", page)
    assert re.search(r"<td class=\"num\">5</td><td>email</td>", page)
    assert re.search(r"<td class=\"num\">6</td><td>language</td>", page)
    assert contacts.find(session, "new@example.org") is None
    done = post(client, "/admin/import/commit", form_page="/admin/import")
    assert "Import done" in done.get_data(as_text=True)
    session.expire_all()
    assert contacts.find(session, "new@example.org") is not None
    assert contacts.find(session, "erased@example.org") is None
    again = post(client, "/admin/import/commit", form_page="/admin/import")
    assert again.status_code == 302  # the same upload is not imported twice


def test_import_of_a_binary_file_is_refused_with_a_reason(as_role):
    response = upload(as_role("marketing"), b"\x00\x01\x02PK", "contacts.csv")
    assert response.status_code == 422
    assert "Error:" in response.get_data(as_text=True)


def test_an_import_row_with_a_control_character_is_rejected_on_the_page(as_role, topic):
    client = as_role("marketing")
    page = upload(client, "email;organisation\nana@example.org;Haven\u009b2J\n".encode())
    text = page.get_data(as_text=True)
    assert re.search(r"Rejected</dt><dd>1<", text)
    assert re.search(r"<td class=\"num\">2</td><td>organisation</td>", text)
    assert "\u009b" not in text
