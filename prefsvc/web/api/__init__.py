"""``/api/v1``: the marketing team's JSON API, documented by an OpenAPI 3 spec built from code.

flask-smorest builds ``/api/v1/openapi.json`` from the routes and their marshmallow schemas;
``/api/v1/docs`` renders that spec as one self-contained page (no external assets, so the
strict CSP holds). Every route needs a bearer key whose role allows it (``auth``); every
error is an RFC 9457 problem (``problems``).
"""

from __future__ import annotations

import http
import re

from flask import Response, request
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from prefsvc.errors import PrefsvcError
from prefsvc.web import json_bodies
from prefsvc.web.api import auth, problems
from prefsvc.web.api.schemas import ProblemSchema
from prefsvc.web.request_logs import RedactedInRequestLogs

PREFIX = "/api/v1"
EXTENSION_KEY = "prefsvc.api"


class PrefsvcApi(Api):
    """flask-smorest's Api, with problem+json errors and without its app-wide error handler."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Keep the app's own handler (HTML pages outside /api); the blueprints map errors."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An RFC 9457 problem", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, problems.PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


class ApiBlueprint(Blueprint):
    """flask-smorest's Blueprint reading JSON bodies with bounds (``json_bodies``)."""

    ARGUMENTS_PARSER = json_bodies.ArgumentsParser()


def blueprint(
    name: str, description: str, url_prefix: str = "", *, body: str = "application/json"
) -> Blueprint:
    """Make an API blueprint: bearer auth on every route, errors as problems.

    A request body of another media type than ``body`` is refused with 415, after the key
    and role are checked.
    """
    bp = ApiBlueprint(name, __name__, url_prefix=f"{PREFIX}{url_prefix}", description=description)
    bp.before_request(auth.check_access)
    bp.before_request(lambda: _refuse_other_media_types(body))
    bp.register_error_handler(HTTPException, problems.http_error)
    bp.register_error_handler(PrefsvcError, problems.domain_error)
    return bp


class RedactAddresses(RedactedInRequestLogs):
    """Hide addresses in logged request lines (a search ``?q=ana@example.org`` puts one there)."""

    PATTERN = re.compile(r"[^\s/?&=\"']+(?:@|%40)[^\s&\"']+", re.IGNORECASE)
    REPLACEMENT = "[address]"


def _refuse_other_media_types(expected: str) -> Response | None:
    if request.method not in ("POST", "PUT", "PATCH") or not request.content_length:
        return None
    if request.mimetype == expected:
        return None
    return problems.problem(
        415,
        f"send the request body as {expected}",
        title="Unsupported Media Type",
        errors={"Content-Type": [f"must be {expected}"]},
    )
