"""Contact import wizard: upload, match the columns, a preview job, then the import job.

The upload is written to ``<instance>/imports`` under a random name (never read into
memory); the columns step shows each of the file's columns with the field it will fill,
guessed from its header in nl/fr/en and open to change. Both the preview and the import run
as background jobs (``importing.jobs``); their page refreshes itself until they are done.
"""

from __future__ import annotations

from pathlib import Path

from flask import (
    Response,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from prefsvc import clock
from prefsvc.errors import ImportFileError, ImportTooLarge
from prefsvc.extensions import db
from prefsvc.models import ImportStatus
from prefsvc.people.importing import jobs, reading, rows, vocabulary
from prefsvc.queue import broker
from prefsvc.settings import current_settings
from prefsvc.web.admin.blueprint import MARKETING, bp, record, requires
from prefsvc.web.error_pages import http_error

PENDING = "pending_import"
IGNORE = ""


def _files() -> Path:
    return jobs.folder(current_settings().instance_path)


def reason(code: str, params: dict) -> str:
    """A row problem or note in the page's language."""
    return rows.render(code, params, _)


@bp.app_template_global("import_reason")
def _import_reason(code: str, params: dict) -> str:
    return reason(code, params)


def _upload_page(error: str | None, status: int = 200):
    page = render_template(
        "admin/import.html",
        error=error,
        values=vocabulary.VALUES,
        max_megabytes=format_decimal(current_settings().import_max_bytes / 1e6, "#,##0.#"),
    )
    return page, status


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge):
    # The limit is checked before the view (and its sign-in check): only staff who may import
    # see the upload page again with the reason; anyone else gets the plain 413 page.
    if (
        request.endpoint == "admin.import_upload"
        and current_user.is_authenticated
        and current_user.may(MARKETING)
    ):
        return _upload_page(error.description, 413)
    return http_error(error)


@bp.route("/import", methods=["GET", "POST"])
@requires(MARKETING)
def import_upload():
    if request.method == "GET":
        return _upload_page(None)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _upload_page(_("Choose a CSV file."), 422)
    files = _files()
    jobs.forget_stale(db.session, files, now=clock.now())
    db.session.commit()
    stored = files / jobs.new_stored_name()
    upload.save(stored)  # copied in blocks from werkzeug's spooled temporary file
    settings = current_settings()
    try:
        reading.check_size(stored.stat().st_size, settings.import_max_bytes)
        header = reading.header_preview(stored)
    except ImportFileError as exc:
        stored.unlink(missing_ok=True)
        status = 413 if isinstance(exc, ImportTooLarge) else 422
        return _upload_page(str(exc), status)
    session[PENDING] = {
        "stored": stored.name,
        "filename": Path(upload.filename).name[:200],
        "header": [cell[:100] for cell in header[:100]],
    }
    return redirect(url_for("admin.import_columns"))


@bp.route("/import/columns", methods=["GET", "POST"])
@requires(MARKETING)
def import_columns():
    pending = session.get(PENDING) or {}
    stored = _files() / str(pending.get("stored", "-"))
    if not pending or not stored.is_file() or "/" in pending["stored"]:
        flash(_("That upload is no longer waiting; upload the file again."), "error")
        return redirect(url_for("admin.import_upload"))
    header = pending["header"]
    if request.method == "GET":
        chosen = vocabulary.suggest(header)
        return _columns_page(pending, chosen, None)
    chosen = vocabulary.checked_mapping(
        [request.form.get(f"column-{i}") or None for i in range(len(header))], len(header)
    )
    if "email" not in chosen:
        error = _("Choose the column that holds the email addresses.")
        return _columns_page(pending, chosen, error, 422)
    try:
        job = jobs.queue(
            db.session,
            stored=stored,
            filename=pending["filename"],
            dry_run=True,
            source="admin",
            requested_by=f"user:{current_user.username}",
            now=clock.now(),
            max_bytes=current_settings().import_max_bytes,
            mapping=chosen,
        )
    except ImportFileError as exc:
        db.session.rollback()
        session.pop(PENDING, None)
        return _upload_page(str(exc), 413)
    db.session.commit()
    session.pop(PENDING, None)
    broker.queue().jobs_held()
    return redirect(url_for("admin.import_job", job_id=job.id))


def _columns_page(pending: dict, chosen: list, error: str | None, status: int = 200):
    return render_template(
        "admin/import_columns.html",
        filename=pending["filename"],
        columns=list(zip(pending["header"], chosen, strict=True)),
        fields=vocabulary.FIELDS,
        values=vocabulary.VALUES,
        error=error,
    ), status


@bp.get("/imports/<int:job_id>")
@requires(MARKETING)
def import_job(job_id: int):
    job = jobs.get(db.session, job_id)
    shown = list(
        jobs.rows(
            db.session,
            job.id,
            kinds=("rejected", "suppressed", "kept"),
            limit=jobs.SHOWN_ROWS,
        )
    )
    page = render_template(
        "admin/import_job.html",
        job=job,
        rejected=[r for r in shown if r.kind == "rejected"],
        notes=[r for r in shown if r.kind != "rejected"],
        follow_up=jobs.follow_up(db.session, job) if job.dry_run else None,
        running=job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING),
        shown_limit=jobs.SHOWN_ROWS,
    )
    db.session.rollback()
    return page


@bp.post("/imports/<int:job_id>/import")
@requires(MARKETING)
def import_commit(job_id: int):
    try:
        job = jobs.import_preview(
            db.session, job_id, requested_by=f"user:{current_user.username}", now=clock.now()
        )
    except jobs.ImportRefused as exc:
        db.session.rollback()
        flash(_("This preview cannot be imported: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("admin.import_job", job_id=job_id))
    record("contacts.import", str(job.id), preview=job_id)
    db.session.commit()
    broker.queue().jobs_held()
    return redirect(url_for("admin.import_job", job_id=job.id))


@bp.get("/imports/<int:job_id>/errors.csv")
@requires(MARKETING)
def import_errors(job_id: int):
    job = jobs.get(db.session, job_id)
    labels = _field_labels()

    lines = jobs.rejected_csv(
        db.session,
        job.id,
        [_("Line"), _("Column"), _("Reason")],
        lambda row: [row.line, labels.get(row.field, row.field), reason(row.code, row.params)],
    )

    name = f"import-{job.id}-errors.csv"
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _field_labels() -> dict[str, str]:
    return {
        "email": _("Email address"),
        "first_name": _("First name"),
        "last_name": _("Last name"),
        "language": _("Language"),
        "organisation": _("Organisation"),
        "role": _("Role"),
        "topics": _("Topics"),
        "basis": _("Basis"),
        "basis_date": _("Basis date"),
    }


@bp.app_template_global("import_field_labels")
def _labels() -> dict[str, str]:
    return _field_labels()
