"""The admin import wizard: upload, columns, a preview job, then the import job, in nl/fr/en."""

from __future__ import annotations

import io
import re

import pytest

from prefsvc.consent import suppression
from prefsvc.models import ImportJob, ImportStatus, SuppressionReason
from prefsvc.people import contacts
from prefsvc.people.importing import jobs
from prefsvc.queue import broker, outbox
from prefsvc.settings import SETTINGS_KEY
from tests.factories import make_contact
from tests.web.admin.conftest import csrf_token, post

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


def choose_columns(client, chosen: dict[int, str] | None = None):
    page = client.get("/admin/import/columns").get_data(as_text=True)
    form = {}
    for index, options in re.findall(r'<select id="column-(\d+)"[^>]*>(.*?)</select>', page, re.S):
        form[f"column-{index}"] = re.search(r'<option value="([^"]*)" selected', options)[1]
    form |= {f"column-{i}": v for i, v in (chosen or {}).items()}
    return client.post("/admin/import/columns", data={"csrf_token": csrf_token(page), **form})


def run_jobs() -> None:
    queue = broker.queue()
    queue.jobs_held()
    queue.join()


def preview(client, data: bytes = CSV, **kw) -> str:
    """Upload, keep the guessed columns, let the preview job run; return the job's page."""
    assert upload(client, data).status_code == 302
    answer = choose_columns(client, **kw)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    run_jobs()
    return client.get(answer.location).get_data(as_text=True)


def test_preview_job_then_import_job_through_the_outbox(
    as_role, session, topic, settings, monkeypatch
):
    make_contact(session, "old@example.org", first_name="Old", language="fr")
    suppression.add(
        session, settings.suppression_key, "erased@example.org", SuppressionReason.ERASURE
    )
    session.commit()
    client = as_role("marketing")
    monkeypatch.setattr(broker.queue(), "jobs_held", lambda: None)
    assert upload(client).status_code == 302
    columns = choose_columns(client)
    job_id = int(columns.location.rsplit("/", 1)[1])
    assert outbox.held(session, jobs.ACTOR) == [[job_id]]  # committed with the job
    waiting = client.get(columns.location).get_data(as_text=True)
    assert 'http-equiv="refresh"' in waiting and "Waiting for a worker" in waiting
    monkeypatch.undo()

    run_jobs()
    page = client.get(columns.location).get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page
    assert re.search(r"New contacts</dt><dd>1<", page)
    assert re.search(r"Updated</dt><dd>1<", page)
    assert re.search(r"Suppressed \(never re-added\)</dt><dd>1<", page)
    assert re.search(r"Rejected</dt><dd>2<", page)
    assert re.search(r'<td class="num">5</td><td>Email address</td>', page)
    assert re.search(r'<td class="num">6</td><td>Language</td><td>must be one of nl, fr, en', page)
    assert "the address is on the suppression list" in page
    assert contacts.find(session, "new@example.org") is None

    errors = client.get(f"/admin/imports/{job_id}/errors.csv")
    assert errors.mimetype == "text/csv"
    assert errors.get_data(as_text=True).splitlines()[1].startswith("5,Email address,")

    done = post(client, f"/admin/imports/{job_id}/import", form_page=columns.location)
    assert done.status_code == 302
    run_jobs()
    result = client.get(done.location).get_data(as_text=True)
    assert "Import done" in result and re.search(r"New contacts</dt><dd>1<", result)
    session.expire_all()
    assert contacts.find(session, "new@example.org") is not None
    assert contacts.find(session, "erased@example.org") is None
    imported = session.get(ImportJob, int(done.location.rsplit("/", 1)[1]))
    assert imported.status is ImportStatus.DONE and imported.stored_name is None
    assert list(jobs.folder(settings.instance_path).iterdir()) == []  # the upload is gone
    again = post(client, f"/admin/imports/{job_id}/import", form_page=columns.location)
    assert again.location == done.location  # the same preview is not imported twice


def test_a_preview_with_no_row_to_import_offers_no_import_button(as_role, topic):
    page = preview(as_role("marketing"), b"email;language\nnot-an-address;nl\nx@;fr\n")
    assert re.search(r"Rejected</dt><dd>2<", page)
    assert "Import these rows" not in page
    assert "Nothing to import" in page


def test_an_unknown_header_is_mapped_by_hand_and_synonyms_are_guessed(as_role, session, topic):
    client = as_role("marketing")
    data = b"Adres;Voornaam;Rol;Taal\nana@example.org;Ana;docent;Frans\n"
    assert upload(client, data).status_code == 302
    page = client.get("/admin/import/columns").get_data(as_text=True)
    selects = dict(re.findall(r'<select id="column-(\d+)"[^>]*>(.*?)</select>', page, re.S))
    assert '<option value="" selected>' in selects["0"]  # "Adres": not a word we know
    assert '<option value="first_name" selected>' in selects["1"]
    assert '<option value="role" selected>' in selects["2"]
    unmapped = choose_columns(client)
    assert unmapped.status_code == 422
    assert "email addresses" in unmapped.get_data(as_text=True)
    answer = choose_columns(client, {0: "email"})
    assert answer.status_code == 302
    run_jobs()
    job = session.get(ImportJob, int(answer.location.rsplit("/", 1)[1]))
    assert (job.status, job.created, job.rejected) == (ImportStatus.DONE, 1, 0)


def test_preview_says_which_rows_stay_unsubscribed(as_role, session, topic, clock):
    from prefsvc.consent import changes

    ana = make_contact(session, "ana@example.org", topics=[topic])
    changes.unsubscribe(session, ana, topic, channel="one-click", now=clock(), today=clock().date())
    session.commit()
    page = preview(as_role("marketing"), b"email;topics\nana@example.org;nieuwe-opleidingen\n")
    assert "stays unsubscribed from nieuwe-opleidingen" in page


@pytest.mark.parametrize(
    "language, rejected, reason",
    [
        ("nl", "Geweigerd", "moet een van deze zijn: nl, fr, en"),
        ("fr", "Rejetés", "doit être l’une de ces valeurs\u00a0: nl, fr, en"),
    ],
)
def test_row_errors_are_in_the_page_language(as_role, topic, language, rejected, reason):
    client = as_role("marketing")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    page = preview(client, b"E-mailadres;Taal;Rol\nana@example.org;de;docent\n")
    assert rejected in page
    assert reason in page


def test_a_large_import_counts_as_the_page_language_writes_numbers(as_role, topic):
    client = as_role("marketing")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "nl"
    rows = "".join(f"p{n}@example.org;nieuwe-opleidingen\n" for n in range(1200))
    page = preview(client, ("email;topics\n" + rows).encode())
    assert re.search(r"Nieuwe contacten</dt><dd>1\.200<", page)


def test_a_binary_file_is_refused_at_upload(as_role):
    response = upload(as_role("marketing"), b"\x00\x01\x02PK", "contacts.csv")
    assert response.status_code == 422
    assert "Error:" in response.get_data(as_text=True)


def test_a_mixed_encoding_file_fails_its_job_naming_the_line(as_role, session, topic):
    data = "email;first_name\namelie@example.org;Amélie\n".encode() + b"zoe@example.org;Zo\xe9\n"
    page = preview(as_role("marketing"), data)
    assert "line 3: not valid UTF-8" in page
    assert contacts.find(session, "amelie@example.org") is None


@pytest.mark.parametrize(
    ("language", "says"), [("nl", "Hoogstens 2,5 MB."), ("fr", "2,5 Mo au maximum.")]
)
def test_the_upload_page_says_how_large_a_file_may_be(
    as_role, app, settings, monkeypatch, language, says
):
    monkeypatch.setitem(app.extensions, SETTINGS_KEY, settings.with_(import_max_bytes=2_500_000))
    client = as_role("marketing")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    assert says in client.get("/admin/import").get_data(as_text=True)


@pytest.mark.parametrize("rows", [20, 6000], ids=["checked-on-disk", "refused-while-read"])
def test_a_file_over_the_import_limit_is_refused_with_a_readable_page(
    as_role, app, settings, monkeypatch, rows
):
    monkeypatch.setitem(app.extensions, SETTINGS_KEY, settings.with_(import_max_bytes=100))
    response = upload(as_role("marketing"), b"email\n" + b"a@example.org\n" * rows)
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert re.search(
        r"the file is (\d+ bytes, more|larger) than the import limit of 100 bytes", text
    )
    assert "Error:" in text
    assert list(jobs.folder(settings.instance_path).iterdir()) == []


def test_an_import_row_with_a_control_character_is_rejected_on_the_page(as_role, topic):
    page = preview(
        as_role("marketing"), "email;organisation\nana@example.org;Haven\u009b2J\n".encode()
    )
    assert re.search(r"Rejected</dt><dd>1<", page)
    assert re.search(r'<td class="num">2</td><td>Organisation</td>', page)
    assert "\u009b" not in page
