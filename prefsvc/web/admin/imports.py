"""Contact import: upload a CSV, see what it would do (a dry run), then commit that same file.

Between the two steps the upload waits in the instance folder under a random name kept in
the session; files left waiting longer than ``PENDING_IMPORT_HOURS`` are removed.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from prefsvc import clock
from prefsvc.errors import ImportFileError
from prefsvc.extensions import db
from prefsvc.people import importing
from prefsvc.settings import current_settings
from prefsvc.web.admin.blueprint import MARKETING, bp, record, requires

IMPORT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,40}$")
PENDING_IMPORT_HOURS = 24


def _import_dir() -> Path:
    path = current_settings().instance_path / "admin-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _forget_old_imports(folder: Path) -> None:
    cut_off = time.time() - PENDING_IMPORT_HOURS * 3600
    for old in folder.glob("*.csv"):
        if old.stat().st_mtime < cut_off:
            old.unlink(missing_ok=True)


def _run_import(data: bytes, filename: str, *, dry_run: bool) -> importing.ImportResult:
    result = importing.import_csv(
        db.session,
        data,
        filename=filename,
        now=clock.now(),
        today=clock.today(),
        suppression_key=current_settings().suppression_key,
        source="admin",
        dry_run=dry_run,
    )
    return result


@bp.route("/import", methods=["GET", "POST"])
@requires(MARKETING)
def import_upload():
    if request.method == "GET":
        return render_template("admin/import.html", error=None)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("admin/import.html", error=_("Choose a CSV file.")), 422
    data = upload.read()
    filename = Path(upload.filename).name[:200]
    try:
        result = _run_import(data, filename, dry_run=True)
    except ImportFileError as exc:
        db.session.rollback()
        return render_template("admin/import.html", error=str(exc)), 422
    db.session.rollback()
    folder = _import_dir()
    _forget_old_imports(folder)
    token = secrets.token_urlsafe(18)
    (folder / f"{token}.csv").write_bytes(data)
    session["pending_import"] = {"token": token, "filename": filename}
    return render_template("admin/import_preview.html", result=result, filename=filename)


@bp.post("/import/commit")
@requires(MARKETING)
def import_commit():
    pending = session.pop("pending_import", None) or {}
    token = pending.get("token", "")
    path = _import_dir() / f"{token}.csv"
    if not IMPORT_TOKEN.match(token) or not path.exists():
        flash(_("That import is no longer waiting; upload the file again."), "error")
        return redirect(url_for("admin.import_upload"))
    data = path.read_bytes()
    try:
        result = _run_import(data, pending["filename"], dry_run=False)
    except ImportFileError as exc:
        db.session.rollback()
        return render_template("admin/import.html", error=str(exc)), 422
    record("contacts.import", None, **result.summary())
    db.session.commit()
    path.unlink(missing_ok=True)
    return render_template(
        "admin/import_preview.html", result=result, filename=pending["filename"], committed=True
    )
