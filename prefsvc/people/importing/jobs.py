"""Imports as background jobs: queued with the job outbox, run by a worker, resumable.

The admin UI and the API store the upload under ``<instance>/imports`` and queue a job
(``queue``): the ``ImportJob`` row and its ``run_import`` job are committed together. The
worker's ``run`` streams the file (``importing.import_file``); each chunk commits its rows,
the job's counts, ``rows_done`` and the rows worth telling together, so a job that stopped
(a worker killed, a redelivered message) goes on from its last chunk, and a second runner
of the same job finds its chunk already counted and stops.

A running job is a lease, as a claimed delivery is (``campaigns.claims``): it carries its
worker process's heartbeat name (``owner``) and stays its own while that process beats. Once
the owner's last beat is older than ``LEASE_SECONDS`` (SIGKILL, an in-process queue that died
with its web process), a redelivered job takes it over, or the scheduler (``recover``) holds
a new ``run_import`` job for it; the scheduler does the same for a queued job whose message
was lost. Each chunk starts by locking the job's row on the condition that ``rows_done`` and
``owner`` are still this runner's, so two runners never both commit the same chunk.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from prefsvc.errors import ImportFileError, NotFound, PrefsvcError
from prefsvc.models import ImportJob, ImportJobRow, ImportStatus
from prefsvc.people import importing
from prefsvc.people.importing.reading import FileFacts, check_size
from prefsvc.queue import heartbeats, outbox

log = logging.getLogger(__name__)
ACTOR = "run_import"
FOLDER = "imports"
PREVIEW_KEPT_HOURS = 24  # an upload previewed and never imported is deleted after this
# Where a preview can be imported next (the admin wizard), its file is kept for that; an API
# preview is only a report, and its file goes when it is done.
KEEPS_PREVIEWED_FILE = frozenset({"admin"})
DEFAULT_LEASE = timedelta(seconds=30)  # LEASE_SECONDS' default; workers pass the setting
PRUNE_CHUNK = 500  # jobs per DELETE of the retention run
SHOWN_ROWS = 200  # rows worth telling shown on a page; errors.csv has them all
NOTHING_TO_IMPORT = "no row of this file would create or change a contact"


class ImportRefused(PrefsvcError):
    """An import cannot start from this preview (not finished, nothing to import, gone)."""


def folder(instance_path: Path) -> Path:
    path = instance_path / FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_stored_name() -> str:
    """Return a random file name for an upload: never the name the person gave."""
    return f"{secrets.token_urlsafe(18)}.csv"


def queue(
    session: Session,
    *,
    stored: Path,
    filename: str,
    dry_run: bool,
    source: str,
    requested_by: str | None,
    now: datetime,
    max_bytes: int,
    mapping: Sequence[str | None] | None = None,
) -> ImportJob:
    """Record a job for a stored upload and hold its ``run_import`` job; the caller commits.

    Raises ``ImportTooLarge`` (and deletes the file) over ``max_bytes``.
    """
    size = stored.stat().st_size
    try:
        check_size(size, max_bytes)
    except ImportFileError:
        stored.unlink(missing_ok=True)
        raise
    job = ImportJob(
        status=ImportStatus.QUEUED,
        dry_run=dry_run,
        filename=filename[:200],
        stored_name=stored.name,
        size_bytes=size,
        mapping=list(mapping) if mapping is not None else None,
        source=source,
        requested_by=requested_by,
        created_at=now,
        queued_at=now,
    )
    session.add(job)
    session.flush()
    outbox.add(session, ACTOR, [job.id], now=now)
    return job


def import_preview(
    session: Session, preview_id: int, *, requested_by: str | None, now: datetime
) -> ImportJob:
    """Queue the real import of a finished preview's file; a second call returns the same job."""
    preview = session.get(ImportJob, preview_id)
    if preview is None or not preview.dry_run:
        raise NotFound("no such import preview")
    already = session.scalar(select(ImportJob).where(ImportJob.preview_id == preview_id))
    if already is not None:
        return already
    if preview.status is not ImportStatus.DONE or preview.stored_name is None:
        raise ImportRefused("this preview is not finished, or its file is no longer kept")
    if preview.created + preview.updated == 0:
        raise ImportRefused(NOTHING_TO_IMPORT)
    job = ImportJob(
        status=ImportStatus.QUEUED,
        dry_run=False,
        filename=preview.filename,
        stored_name=preview.stored_name,
        size_bytes=preview.size_bytes,
        mapping=preview.mapping,
        source=preview.source,
        requested_by=requested_by,
        preview_id=preview.id,
        encoding=preview.encoding,
        rows_total=preview.rows_total,
        created_at=now,
        queued_at=now,
    )
    session.add(job)
    session.flush()
    outbox.add(session, ACTOR, [job.id], now=now)
    return job


def _abandoned(now: datetime, lease: timedelta) -> Any:
    """Running jobs whose worker stopped beating more than ``lease`` ago, or that have none
    (handed back after a failure, or run outside a worker)."""
    alive = heartbeats.live(now=now, lease=lease)
    return (ImportJob.status == ImportStatus.RUNNING) & (
        ImportJob.owner.is_(None) | ImportJob.owner.not_in(alive)
    )


def _owned_by(owner: str | None) -> Any:
    """The job's rows this runner owns (``None``: run outside a worker, or handed back)."""
    return ImportJob.owner.is_(None) if owner is None else ImportJob.owner == owner


def claim(
    session: Session, job_id: int, *, owner: str | None, now: datetime, lease: timedelta
) -> bool:
    """Take a queued job, or a running one whose lease lapsed, for ``owner``; commit.

    Returns False when the job is finished or a live worker process runs it (it finishes the
    job; if it dies, its lease lapses and a redelivered job or the scheduler takes over).
    """
    if owner is not None:
        heartbeats.beat(session, owner, heartbeats.WORKER, now=now)
    running_here = (ImportJob.status == ImportStatus.RUNNING) & _owned_by(owner)  # its retry
    claimable = (ImportJob.status == ImportStatus.QUEUED) | _abandoned(now, lease) | running_here
    taken = session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, claimable)
        .values(
            status=ImportStatus.RUNNING,
            owner=owner,
            started_at=func.coalesce(ImportJob.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return taken.rowcount == 1


def run(
    session: Session,
    job_id: int,
    *,
    files: Path,
    suppression_key: str,
    max_bytes: int,
    now: datetime,
    today: date,
    owner: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> ImportJob | None:
    """Run (or go on with) one import job; idempotent: a finished job is left as it is.

    ``owner`` is the worker process's heartbeat name: the job is its lease (``claim``).
    A job another live process runs is left to it.
    """
    job = session.get(ImportJob, job_id)
    if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return job
    if not claim(session, job_id, owner=owner, now=now, lease=lease):
        log.info("import job %s is run by another worker", job_id)
        return session.get(ImportJob, job_id)
    job = session.get(ImportJob, job_id)
    session.refresh(job)
    path = files / job.stored_name if job.stored_name else None
    progress = {"rows_done": job.rows_done}
    ours = _owned_by(owner)

    def lock(rows_done: int) -> None:
        # Locks the row until the chunk commits: a takeover waits for it, then sees its count.
        still_mine = session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.rows_done == rows_done, ours)
            .values(rows_done=ImportJob.rows_done)
            .execution_options(synchronize_session=False)
        )
        if still_mine.rowcount != 1:
            raise _Overtaken

    def record(result: importing.ImportResult, rows_done: int) -> None:
        counts = result.summary()
        moved = session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.rows_done == progress["rows_done"], ours)
            .values(
                rows_done=rows_done,
                **{name: getattr(ImportJob, name) + n for name, n in counts.items()},
            )
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            raise _Overtaken
        progress["rows_done"] = rows_done
        notes = [
            {"job_id": job_id, "line": e.line, "kind": "rejected", "field": e.field}
            | {"code": e.code, "params": e.params}
            for e in result.errors
        ] + [
            {"job_id": job_id, "line": o.line, "kind": o.action, "field": None}
            | {"code": o.code, "params": o.params}
            for o in result.outcomes
            if o.action in ("suppressed", "kept")
        ]
        if notes:
            session.execute(insert(ImportJobRow), notes)

    try:
        if path is None or not path.exists():
            raise ImportFileError("the uploaded file is no longer kept; upload it again")
        if job.encoding is None or job.rows_total is None:
            facts = importing.inspect(path, mapping=job.mapping, max_bytes=max_bytes)
            job.encoding, job.rows_total = facts.encoding, facts.rows
            session.commit()
        facts = FileFacts(encoding=job.encoding, rows=job.rows_total, size=job.size_bytes)
        importing.import_file(
            session,
            path,
            filename=job.filename,
            now=now,
            today=today,
            suppression_key=suppression_key,
            source=job.source,
            imported_by=job.requested_by,
            dry_run=job.dry_run,
            mapping=job.mapping,
            facts=facts,
            skip_rows=job.rows_done,
            before_chunk=lock,
            on_chunk=record,
        )
    except _Overtaken:
        session.rollback()
        log.info("import job %s was taken over by another worker", job_id)
        return session.get(ImportJob, job_id)
    except ImportFileError as exc:
        session.rollback()
        job = session.get(ImportJob, job_id)
        job.status, job.error, job.finished_at = ImportStatus.FAILED, str(exc), now
        _forget_file(session, job, files)
        session.commit()
        log.info("import job %s refused its file", job_id)
        return job
    except BaseException:
        # A failure (the database gone, the time limit): hand the job back, so a retry on any
        # process (or the scheduler) goes on with it without waiting for this one to die.
        session.rollback()
        _hand_back(session, job_id, ours)
        raise
    job = session.get(ImportJob, job_id)
    session.refresh(job)
    job.status, job.finished_at = ImportStatus.DONE, now
    if not (job.dry_run and job.source in KEEPS_PREVIEWED_FILE):
        _forget_file(session, job, files)
    session.commit()
    return job


def _hand_back(session: Session, job_id: int, ours: Any) -> None:
    try:
        session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.status == ImportStatus.RUNNING, ours)
            .values(owner=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    except Exception as exc:  # noqa: BLE001 - the lease lapses when this process dies
        session.rollback()
        log.warning("import job %s not handed back: %s", job_id, type(exc).__name__)


def recover(session: Session, *, now: datetime, lease: timedelta, grace: timedelta) -> list[int]:
    """Hold a new ``run_import`` job for each import whose runner died or whose job was lost.

    A running job whose owner stopped beating ``lease`` ago, and a queued one whose last job
    was held more than ``grace`` ago and is no longer in the outbox (an in-process queue
    that died with its web process, a broker restarted empty). A job still alive somewhere
    meets the copy's ``claim`` and the copy does nothing. Not committed: the caller commits.
    """
    waiting = (ImportJob.status == ImportStatus.QUEUED) & (
        ImportJob.queued_at.is_(None) | (ImportJob.queued_at < now - grace)
    )
    lapsed = _abandoned(now, lease) & (
        ImportJob.queued_at.is_(None) | (ImportJob.queued_at < now - lease)
    )
    candidates = list(session.scalars(select(ImportJob.id).where(waiting | lapsed)))
    if not candidates:
        return []
    in_outbox = {args[0] for args in outbox.held(session, ACTOR)}
    ids = [job_id for job_id in candidates if job_id not in in_outbox]
    for job_id in ids:
        outbox.add(session, ACTOR, [job_id], now=now)
    if ids:
        session.execute(
            update(ImportJob)
            .where(ImportJob.id.in_(ids))
            .values(queued_at=now)
            .execution_options(synchronize_session=False)
        )
    return sorted(ids)


class _Overtaken(Exception):
    """Another runner of the same job committed this chunk first."""


def _forget_file(session: Session, job: ImportJob, files: Path) -> None:
    if job.stored_name is None:
        return
    (files / job.stored_name).unlink(missing_ok=True)
    session.execute(
        update(ImportJob)
        .where(ImportJob.stored_name == job.stored_name)
        .values(stored_name=None)
        .execution_options(synchronize_session="fetch")
    )


def forget_stale(session: Session, files: Path, *, now: datetime) -> int:
    """Delete the files of previews (and uploads) left for a day; return how many."""
    cut_off = now - timedelta(hours=PREVIEW_KEPT_HOURS)
    stale = session.scalars(
        select(ImportJob).where(
            ImportJob.dry_run.is_(True),
            ImportJob.stored_name.is_not(None),
            ImportJob.created_at < cut_off,
        )
    ).all()
    followed = set(
        session.scalars(
            select(ImportJob.preview_id).where(
                ImportJob.preview_id.in_([j.id for j in stale]),
                ImportJob.status.in_([ImportStatus.QUEUED, ImportStatus.RUNNING]),
            )
        )
    )
    count = 0
    for job in stale:
        if job.id not in followed:
            _forget_file(session, job, files)
            count += 1
    # Uploads left at the columns step never became a job.
    kept = set(
        session.scalars(select(ImportJob.stored_name).where(ImportJob.stored_name.is_not(None)))
    )
    for path in files.glob("*.csv"):
        if path.name not in kept and path.stat().st_mtime < cut_off.timestamp():
            path.unlink(missing_ok=True)
            count += 1
    return count


def prune(session: Session, files: Path | None, *, now: datetime, keep_days: int) -> int:
    """Delete import jobs finished more than ``keep_days`` ago, their rows worth telling (they
    quote cells: personal data) and any file still kept; return how many. Not committed.

    Queued and running jobs stay whatever their age; a file is deleted only once no job
    left names it.
    """
    cut_off = now - timedelta(days=keep_days)
    old = ImportJob.status.in_([ImportStatus.DONE, ImportStatus.FAILED]) & (
        ImportJob.finished_at < cut_off
    )
    found = session.execute(select(ImportJob.id, ImportJob.stored_name).where(old)).all()
    ids = [row.id for row in found]
    names = {row.stored_name for row in found if row.stored_name is not None}
    for start in range(0, len(ids), PRUNE_CHUNK):
        chunk = ids[start : start + PRUNE_CHUNK]
        session.execute(delete(ImportJobRow).where(ImportJobRow.job_id.in_(chunk)))
        session.execute(
            update(ImportJob)
            .where(ImportJob.preview_id.in_(chunk))
            .values(preview_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(ImportJob)
            .where(ImportJob.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    if files is not None and names:
        still = set(
            session.scalars(select(ImportJob.stored_name).where(ImportJob.stored_name.in_(names)))
        )
        for name in names - still:
            (files / name).unlink(missing_ok=True)
    return len(ids)


def get(session: Session, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound("no such import")
    return job


def follow_up(session: Session, job: ImportJob) -> ImportJob | None:
    """Return the import started from this preview, if any."""
    return session.scalar(select(ImportJob).where(ImportJob.preview_id == job.id))


def rows(
    session: Session, job_id: int, *, kinds: Sequence[str], limit: int | None = None
) -> Iterator[ImportJobRow]:
    """Yield a job's rows worth telling of these kinds, in file order, without loading them all."""
    query = (
        select(ImportJobRow)
        .where(ImportJobRow.job_id == job_id, ImportJobRow.kind.in_(list(kinds)))
        .order_by(ImportJobRow.line, ImportJobRow.id)
        .limit(limit)
        .execution_options(yield_per=500)
    )
    yield from session.scalars(query)


def rejected_csv(
    session: Session, job_id: int, header: list[str], cells: Callable[[ImportJobRow], list[Any]]
) -> Iterator[str]:
    """Stream a job's rejected rows as CSV, about 16 KB a piece: a large file's errors are
    never held whole. ``cells`` says a row in the reader's words (the admin) or in codes and
    English (the API). The read is ended (rolled back) once the last piece is out."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows(session, job_id, kinds=("rejected",)):
        writer.writerow(cells(row))
        if out.tell() > 16_384:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
    session.rollback()


def document(job: ImportJob) -> dict[str, Any]:
    """Return the job as the API shows it."""
    return {
        "id": job.id,
        "status": job.status.value,
        "dry_run": job.dry_run,
        "filename": job.filename,
        "size_bytes": job.size_bytes,
        "encoding": job.encoding,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "rejected": job.rejected,
        "suppressed": job.suppressed,
        "error": job.error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
