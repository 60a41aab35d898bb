"""Import jobs: queued with their outbox job, run by a worker, resumed after a crash, idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from prefsvc.consent import suppression
from prefsvc.errors import ImportTooLarge
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ImportJob,
    ImportJobRow,
    ImportStatus,
    SuppressionReason,
)
from prefsvc.people import importing
from prefsvc.people.importing import jobs, writing
from prefsvc.queue import outbox
from tests.factories import make_topic

pytestmark = pytest.mark.all_databases

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
TODAY = date(2026, 3, 10)
KEY = "test-suppression-key-0123456789"
CSV = (
    "email;voornaam;onderwerpen\n"
    + "".join(f"p{n}@example.org;P{n};nieuws\n" for n in range(7))
    + "nope;X;\ngone@example.org;G;nieuws\n"
)


@pytest.fixture
def files(tmp_path):
    return jobs.folder(tmp_path)


def queued(
    session, files, text: str = CSV, *, dry_run: bool = False, source: str = "admin"
) -> ImportJob:
    stored = files / jobs.new_stored_name()
    stored.write_bytes(text.encode("utf-8", "surrogateescape"))
    job = jobs.queue(
        session,
        stored=stored,
        filename="leads.csv",
        dry_run=dry_run,
        source=source,
        requested_by="apikey:1",
        now=NOW,
        max_bytes=10_000,
    )
    session.commit()
    return job


def run(session, files, job_id: int) -> ImportJob:
    return jobs.run(
        session, job_id, files=files, suppression_key=KEY, max_bytes=10_000, now=NOW, today=TODAY
    )


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def setup(session):
    make_topic(session, "nieuws", "Nieuws")
    suppression.add(session, KEY, "gone@example.org", SuppressionReason.OBJECTION)
    session.commit()


def test_a_job_is_held_in_the_outbox_with_it_and_runs_to_done(session, files, setup):
    job = queued(session, files)
    assert outbox.held(session, jobs.ACTOR) == [[job.id]]
    done = run(session, files, job.id)
    assert done.status is ImportStatus.DONE
    assert (done.rows_total, done.rows_done, done.created, done.rejected, done.suppressed) == (
        9,
        9,
        7,
        1,
        1,
    )
    kinds = session.execute(select(ImportJobRow.line, ImportJobRow.kind, ImportJobRow.code)).all()
    assert sorted(kinds) == [(9, "rejected", "invalid_email"), (10, "suppressed", "listed")]
    assert done.stored_name is None and list(files.iterdir()) == []  # the upload is deleted
    assert run(session, files, job.id).created == 7  # a finished job is left as it is
    assert count(session, Contact) == 7


def test_a_job_stopped_half_way_goes_on_from_its_last_chunk(session, files, setup, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK", 3)
    real_write = writing.write
    calls = []

    def crash_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(importing, "write", crash_on_second_chunk)
    job = queued(session, files)
    with pytest.raises(RuntimeError):
        run(session, files, job.id)
    session.rollback()
    stopped = session.get(ImportJob, job.id)
    session.refresh(stopped)
    assert (stopped.status, stopped.rows_done, stopped.created) == (ImportStatus.RUNNING, 3, 3)

    monkeypatch.setattr(importing, "write", real_write)
    done = run(session, files, job.id)  # the message redelivered
    assert (done.status, done.rows_done, done.created, done.rejected) == (
        ImportStatus.DONE,
        9,
        7,
        1,
    )
    assert count(session, Contact) == 7
    assert count(session, ConsentEvent) == 14  # imported + subscribed, once each


def test_a_second_runner_of_the_same_chunk_stops_without_counting_twice(
    session, files, setup, monkeypatch
):
    job = queued(session, files)
    real_inspect = importing.inspect

    def meanwhile_another_worker(*args, **kwargs):
        facts = real_inspect(*args, **kwargs)
        with session.get_bind().begin() as other:  # another worker committed the chunk first
            other.execute(
                update(ImportJob).where(ImportJob.id == job.id).values(rows_done=9, created=7)
            )
        return facts

    monkeypatch.setattr(importing, "inspect", meanwhile_another_worker)
    run(session, files, job.id)
    session.expire_all()
    assert session.get(ImportJob, job.id).created == 7
    assert count(session, Contact) == 0  # this runner wrote nothing


def test_a_refused_file_fails_the_job_with_the_reason_and_writes_nothing(session, files, setup):
    job = queued(session, files, "email\n" + "a@example.org;Amélie\n" * 3 + "b;Zo\udce9\n")
    done = run(session, files, job.id)
    assert done.status is ImportStatus.FAILED
    assert done.error.startswith("line 5: not valid UTF-8")
    assert count(session, Contact) == 0 and list(files.iterdir()) == []


def test_a_preview_keeps_its_file_for_the_import_then_the_import_deletes_it(session, files, setup):
    preview = run(session, files, queued(session, files, dry_run=True).id)
    assert (preview.status, preview.created, count(session, Contact)) == (ImportStatus.DONE, 7, 0)
    assert len(list(files.iterdir())) == 1
    job = jobs.import_preview(session, preview.id, requested_by="user:lotte", now=NOW)
    session.commit()
    assert jobs.import_preview(session, preview.id, requested_by="x", now=NOW).id == job.id
    done = run(session, files, job.id)
    assert (done.created, count(session, Contact)) == (7, 7)
    assert list(files.iterdir()) == []


def test_an_api_preview_deletes_its_file_when_done(session, files, setup):
    preview = run(session, files, queued(session, files, dry_run=True, source="api").id)
    assert preview.status is ImportStatus.DONE and list(files.iterdir()) == []


def test_a_preview_with_nothing_to_import_cannot_be_imported(session, files, setup):
    preview = run(session, files, queued(session, files, "email\nnope\n", dry_run=True).id)
    with pytest.raises(jobs.ImportRefused, match="no row of this file"):
        jobs.import_preview(session, preview.id, requested_by=None, now=NOW)


def test_a_file_over_the_limit_is_refused_and_deleted(session, files):
    stored = files / jobs.new_stored_name()
    stored.write_bytes(b"email\n" + b"a@example.org\n" * 1000)
    with pytest.raises(ImportTooLarge):
        jobs.queue(
            session,
            stored=stored,
            filename="big.csv",
            dry_run=False,
            source="api",
            requested_by=None,
            now=NOW,
            max_bytes=100,
        )
    assert not stored.exists()


def test_previews_left_for_a_day_lose_their_file(session, files, setup):
    preview = run(session, files, queued(session, files, dry_run=True).id)
    assert jobs.forget_stale(session, files, now=NOW + timedelta(hours=23)) == 0
    assert jobs.forget_stale(session, files, now=NOW + timedelta(hours=25)) == 1
    session.commit()
    assert list(files.iterdir()) == []
    with pytest.raises(jobs.ImportRefused):
        jobs.import_preview(session, preview.id, requested_by=None, now=NOW)


def test_an_upload_never_queued_is_deleted_after_a_day(session, files):
    import os

    left = files / jobs.new_stored_name()
    left.write_bytes(b"email\n")
    os.utime(left, (NOW.timestamp() - 3600, NOW.timestamp() - 3600))
    assert jobs.forget_stale(session, files, now=NOW) == 0
    assert jobs.forget_stale(session, files, now=NOW + timedelta(hours=24)) == 1
    assert not left.exists()


def test_a_job_whose_worker_died_is_queued_again_and_taken_over_without_rows_twice(
    session, files, setup, monkeypatch
):
    from prefsvc.queue import heartbeats

    monkeypatch.setattr(importing, "CHUNK", 3)
    lease = timedelta(seconds=30)
    job = queued(session, files)
    session.execute(db_delete_outbox())
    heartbeats.beat(session, "dead-worker", heartbeats.WORKER, now=NOW)
    session.commit()
    real_write = writing.write
    calls = []

    def killed_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands for SIGKILL: nothing after this line runs
        return real_write(*args, **kwargs)

    monkeypatch.setattr(importing, "write", killed_on_second_chunk)
    monkeypatch.setattr(
        jobs, "_hand_back", lambda *args: None
    )  # a killed process hands back nothing
    with pytest.raises(KeyboardInterrupt):
        jobs.run(
            session,
            job.id,
            files=files,
            suppression_key=KEY,
            max_bytes=10_000,
            now=NOW,
            today=TODAY,
            owner="dead-worker",
            lease=lease,
        )
    session.rollback()
    monkeypatch.setattr(importing, "write", real_write)

    later = NOW + timedelta(seconds=10)
    heartbeats.beat(session, "live-worker", heartbeats.WORKER, now=later)
    assert jobs.recover(session, now=later, lease=lease, grace=lease) == []  # lease not lapsed
    assert not jobs.claim(session, job.id, owner="live-worker", now=later, lease=lease)

    lapsed = NOW + timedelta(seconds=31)
    heartbeats.beat(session, "live-worker", heartbeats.WORKER, now=lapsed)
    assert jobs.recover(session, now=lapsed, lease=lease, grace=lease) == [job.id]
    session.commit()
    assert outbox.held(session, jobs.ACTOR) == [[job.id]]
    done = jobs.run(
        session,
        job.id,
        files=files,
        suppression_key=KEY,
        max_bytes=10_000,
        now=lapsed,
        today=TODAY,
        owner="live-worker",
        lease=lease,
    )
    assert (done.status, done.owner, done.rows_done, done.created) == (
        ImportStatus.DONE,
        "live-worker",
        9,
        7,
    )
    assert count(session, Contact) == 7
    assert count(session, ConsentEvent) == 14  # imported + subscribed, once each


def test_a_queued_job_whose_message_was_lost_is_queued_again(session, files, setup):
    job = queued(session, files)
    session.execute(db_delete_outbox())  # the in-process queue died with its web process
    session.commit()
    grace = timedelta(seconds=60)
    assert jobs.recover(session, now=NOW + grace / 2, lease=grace, grace=grace) == []
    assert jobs.recover(session, now=NOW + grace * 2, lease=grace, grace=grace) == [job.id]
    session.commit()
    assert run(session, files, job.id).status is ImportStatus.DONE


def db_delete_outbox():
    from sqlalchemy import delete

    from prefsvc.models import OutboxJob

    return delete(OutboxJob)
