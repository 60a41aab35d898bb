"""CSV imports (CONTRACT §4) over HTTP: a dry run to preview, then the real import."""

from __future__ import annotations

from werkzeug.datastructures import FileStorage

from prefsvc import clock
from prefsvc.extensions import db
from prefsvc.people import importing
from prefsvc.settings import current_settings
from prefsvc.web.api import auth, blueprint
from prefsvc.web.api import schemas as s

bp = blueprint(
    "imports", "CSV contact imports, with a dry run first.", "/imports", body="multipart/form-data"
)
blueprints = [bp]
MAX_NAME = 200


def _run(upload: FileStorage, *, dry_run: bool) -> tuple[dict, importing.ImportResult]:
    filename = (upload.filename or "upload.csv").replace("\x00", "")[:MAX_NAME] or "upload.csv"
    result = importing.import_csv(
        db.session,
        upload.read(),
        filename=filename,
        now=clock.now(),
        today=clock.today(),
        suppression_key=current_settings().suppression_key,
        source="api",
        imported_by=auth.actor(),
        dry_run=dry_run,
    )
    body = {
        "dry_run": dry_run,
        **result.summary(),
        "errors": [{"line": e.line, "field": e.field, "reason": e.reason} for e in result.errors],
    }
    return body, result


@bp.route("/preview", methods=["POST"])
@auth.requires(bp, "imports")
@bp.arguments(s.ImportFileIn, location="files")
@bp.response(200, s.ImportOut)
def preview(files):
    """Dry run: the counts and rejected rows a real import of this file would give; no change."""
    body, _ = _run(files["file"], dry_run=True)
    db.session.rollback()
    return body


@bp.route("", methods=["POST"])
@auth.requires(bp, "imports")
@bp.arguments(s.ImportFileIn, location="files")
@bp.response(201, s.ImportOut)
def commit(files):
    """Import the file: valid rows are written, rejected ones reported by line and field."""
    body, result = _run(files["file"], dry_run=False)
    auth.record("import.commit", None, **result.summary())
    db.session.commit()
    return body
