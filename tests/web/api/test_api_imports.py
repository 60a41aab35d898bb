"""JSON API: CSV imports as background jobs (202, status, errors.csv), limits and bad files."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from prefsvc.models import Contact
from prefsvc.people.importing import jobs
from prefsvc.queue import broker, outbox
from prefsvc.settings import SETTINGS_KEY
from tests.factories import make_topic

CSV = (
    b"email;first_name;language;topics;basis;basis_date\n"
    b"ana@example.org;Ana;fr;nieuws;training;2025-01-10\n"
    b"not-an-address;Bob;nl;nieuws;;\n"
    b"cor@example.org;Cor;de;;;\n"
    b"dirk@example.org;Dirk;Nederlands;nieuws;toestemming;2025-02-01\n"
)


@pytest.fixture
def news(session):
    topic = make_topic(session, "nieuws", "Nieuws")
    session.commit()
    return topic


def _upload(data: bytes, name: str = "contacts.csv") -> dict:
    return {"file": (io.BytesIO(data), name)}


def _run_jobs() -> None:
    queue = broker.queue()
    queue.jobs_held()
    queue.join()


@pytest.mark.all_databases
def test_an_import_is_a_job_202_then_done_with_counts_and_errors_csv(
    client, session, news, bearer, monkeypatch
):
    headers = bearer("marketing")
    monkeypatch.setattr(broker.queue(), "jobs_held", lambda: None)
    answer = client.post("/api/v1/imports", headers=headers, data=_upload(CSV))
    assert answer.status_code == 202
    job = answer.get_json()
    assert (job["status"], job["dry_run"], job["rows_done"]) == ("queued", False, 0)
    assert answer.headers["Location"].endswith(f"/api/v1/imports/{job['id']}")
    assert outbox.held(session, jobs.ACTOR) == [[job["id"]]]
    assert session.scalar(select(Contact.id)) is None
    monkeypatch.undo()

    _run_jobs()
    status = client.get(answer.headers["Location"], headers=headers).get_json()
    assert status["status"] == "done"
    assert (status["rows_total"], status["rows_done"]) == (4, 4)
    assert (status["created"], status["rejected"], status["encoding"]) == (2, 2, "utf-8-sig")
    assert set(session.scalars(select(Contact.email))) == {"ana@example.org", "dirk@example.org"}

    errors = client.get(f"{answer.headers['Location']}/errors.csv", headers=headers)
    assert errors.status_code == 200 and errors.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(errors.get_data(as_text=True))))
    assert [(r["line"], r["field"], r["code"]) for r in rows] == [
        ("3", "email", "invalid_email"),
        ("4", "language", "not_one_of"),
    ]
    assert rows[1]["reason"] == "must be one of nl, fr, en"  # the API speaks English


def test_a_preview_is_a_dry_run_job_that_changes_nothing(client, session, news, bearer):
    headers = bearer("marketing")
    answer = client.post("/api/v1/imports/preview", headers=headers, data=_upload(CSV))
    assert answer.status_code == 202
    _run_jobs()
    status = client.get(answer.headers["Location"], headers=headers).get_json()
    assert (status["status"], status["dry_run"], status["created"]) == ("done", True, 2)
    assert session.scalar(select(Contact.id)) is None


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x00\x01binary", "not a UTF-8 or Windows-1252 text file"),
        (b"", "empty"),
        (b"name;first_name\nx;y\n", "no 'email' column"),
        ("é".encode("utf-16"), "not a UTF-8 or Windows-1252 text file"),
        ("email\nzoé@example.org\n".encode() + b"zo\xe9@example.org\n", "line 3: not valid UTF-8"),
    ],
)
def test_an_unreadable_file_ends_as_a_failed_job_naming_why(client, session, bearer, data, reason):
    headers = bearer("marketing")
    answer = client.post("/api/v1/imports", headers=headers, data=_upload(data))
    assert answer.status_code == 202
    _run_jobs()
    status = client.get(answer.headers["Location"], headers=headers).get_json()
    assert status["status"] == "failed"
    assert reason in status["error"]
    assert session.scalar(select(Contact.id)) is None


@pytest.mark.parametrize("rows", [20, 6000], ids=["checked-on-disk", "refused-while-read"])
def test_a_file_over_the_import_limit_is_413(client, app, settings, bearer, monkeypatch, rows):
    headers = bearer("marketing")
    monkeypatch.setitem(app.extensions, SETTINGS_KEY, settings.with_(import_max_bytes=100))
    data = b"email\n" + b"a@example.org\n" * rows
    answer = client.post("/api/v1/imports", headers=headers, data=_upload(data))
    assert answer.status_code == 413
    assert answer.mimetype == "application/problem+json"
    assert "import limit" in answer.get_json()["detail"]
    assert list(jobs.folder(settings.instance_path).iterdir()) == []


def test_an_unknown_import_is_404(client, bearer):
    assert client.get("/api/v1/imports/99", headers=bearer("marketing")).status_code == 404


def test_an_import_sent_as_json_is_415_and_without_a_file_422(client, bearer):
    headers = bearer("marketing")
    as_json = client.post("/api/v1/imports", headers=headers, json={"file": "a@example.org"})
    assert as_json.status_code == 415
    assert "multipart/form-data" in as_json.get_json()["detail"]
    without = client.post(
        "/api/v1/imports", headers=headers, data={"other": (io.BytesIO(b"x"), "x.csv")}
    )
    assert without.status_code == 422
    assert "file" in without.get_json()["errors"]


def test_the_openapi_document_describes_the_import_jobs(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "202" in spec["paths"]["/api/v1/imports"]["post"]["responses"]
    assert "413" in spec["paths"]["/api/v1/imports"]["post"]["responses"]
    job = "/api/v1/imports/{job_id}"
    assert spec["paths"][job]["get"]["responses"]["200"]
    assert "text/csv" in spec["paths"][job + "/errors.csv"]["get"]["responses"]["200"]["content"]
