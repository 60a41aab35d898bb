"""Large uploads: the import endpoints take files up to ``IMPORT_MAX_BYTES``, the rest 16 MB.

The limit must be known before the body is parsed, and the CSRF check parses forms before
any view runs, so the request itself knows it from its endpoint. Werkzeug spools a file part
over 500 KB to a temporary file: an upload of any size costs the web process no memory.
"""

from __future__ import annotations

import flask
from flask import current_app
from werkzeug.exceptions import RequestEntityTooLarge

from prefsvc.people.importing.reading import megabytes
from prefsvc.settings import SETTINGS_KEY

UPLOAD_ENDPOINTS = frozenset({"admin.import_upload", "imports.create", "imports.preview"})
MULTIPART_OVERHEAD = 64 * 1024  # the form's boundaries and other fields around the file


def too_large_message(limit: int) -> str:
    return (
        f"the file is larger than the import limit of {megabytes(limit)} (PREFSVC_IMPORT_MAX_BYTES)"
    )


class Request(flask.Request):
    """Flask's request, with the import limit on the import endpoints."""

    @property
    def max_content_length(self) -> int | None:  # type: ignore[override]
        if (
            self.endpoint in UPLOAD_ENDPOINTS
            and self.mimetype != "application/x-www-form-urlencoded"  # a form, not a file
            and current_app
        ):
            return current_app.extensions[SETTINGS_KEY].import_max_bytes + MULTIPART_OVERHEAD
        return flask.Request.max_content_length.fget(self)

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        flask.Request.max_content_length.fset(self, value)

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except RequestEntityTooLarge:
            if self.endpoint not in UPLOAD_ENDPOINTS:
                raise
            limit = current_app.extensions[SETTINGS_KEY].import_max_bytes
            raise RequestEntityTooLarge(description=too_large_message(limit)) from None
