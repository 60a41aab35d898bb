"""CSV imports (CONTRACT §4) over HTTP, as background jobs: 202 and a job to follow.

``POST /imports`` (or ``/imports/preview``, a dry run) stores the upload under the instance
folder and queues a job; ``GET /imports/<id>`` gives its status, counts and progress, and
``GET /imports/<id>/errors.csv`` the rejected rows once it ran.
"""

from __future__ import annotations

from flask import Response, stream_with_context, url_for
from werkzeug.datastructures import FileStorage

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.people.importing import english, jobs
from prefsvc.queue import broker
from prefsvc.settings import current_settings
from prefsvc.web.api import auth, blueprint
from prefsvc.web.api import schemas as s

bp = blueprint(
    "imports",
    "CSV contact imports run as background jobs, with a dry run (preview) first if you like.",
    "/imports",
    body="multipart/form-data",
)
blueprints = [bp]
MAX_NAME = 200
JOB = "/<int(min=1, max=2147483647):job_id>"


def _queue(upload: FileStorage, *, dry_run: bool):
    filename = (upload.filename or "upload.csv").replace("\x00", "")[:MAX_NAME] or "upload.csv"
    settings = current_settings()
    files = jobs.folder(settings.instance_path)
    jobs.forget_stale(db.session, files, now=clock.now())
    stored = files / jobs.new_stored_name()
    upload.save(stored)
    job = jobs.queue(
        db.session,
        stored=stored,
        filename=filename,
        dry_run=dry_run,
        source="api",
        requested_by=auth.actor(),
        now=clock.now(),
        max_bytes=settings.import_max_bytes,
    )
    if not dry_run:
        auth.record("import.commit", str(job.id))
    db.session.commit()
    broker.queue().jobs_held()
    location = url_for("imports.status", job_id=job.id)
    return jobs.document(job), 202, {"Location": location}


@bp.route("", methods=["POST"])
@auth.requires(bp, "imports")
@bp.arguments(s.ImportFileIn, location="files")
@bp.response(202, s.ImportJobOut, headers={"Location": {"schema": {"type": "string"}}})
@bp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def create(files):
    """Queue the import of a CSV file; follow ``Location`` for its status and counts.

    Column names and the values of language, role and basis may be written in Dutch,
    French or English. A file over ``IMPORT_MAX_BYTES`` is 413; a file that cannot be read as
    a whole ends as status ``failed`` with ``error`` saying why, nothing written.
    """
    return _queue(files["file"], dry_run=False)


@bp.route("/preview", methods=["POST"])
@auth.requires(bp, "imports")
@bp.arguments(s.ImportFileIn, location="files")
@bp.response(202, s.ImportJobOut, headers={"Location": {"schema": {"type": "string"}}})
@bp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def preview(files):
    """Queue a dry run: the counts and rejected rows a real import would give; no change."""
    return _queue(files["file"], dry_run=True)


@bp.route(JOB, methods=["GET"])
@auth.requires(bp, "imports")
@bp.response(200, s.ImportJobOut)
@bp.alt_response(404, response="NOT_FOUND")
def status(job_id: int):
    """An import job: ``status`` (queued, running, done, failed), counts and progress."""
    document = jobs.document(jobs.get(db.session, job_id))
    db.session.rollback()
    return document


@bp.route(JOB + "/errors.csv", methods=["GET"])
@auth.requires(bp, "imports")
@bp.response(
    200,
    {"type": "string", "example": "line,field,code,reason\n3,email,invalid_email,is not a …\n"},
    content_type="text/csv",
    description="One row per rejected cell: line, field, code, reason (English)",
)
@bp.alt_response(404, response="NOT_FOUND")
def errors(job_id: int):
    """The rejected rows of an import job as CSV: line, field, code and reason (English)."""
    job = jobs.get(db.session, job_id)

    lines = jobs.rejected_csv(
        db.session,
        job.id,
        ["line", "field", "code", "reason"],
        lambda row: [row.line, row.field, row.code, english(row.code, row.params)],
    )

    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}-errors.csv"'},
    )
