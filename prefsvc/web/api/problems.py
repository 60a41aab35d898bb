"""Errors of the API as RFC 9457 problems (``application/problem+json``), never a 500 page.

Domain errors are mapped here, once: a bad value is 422 with ``errors`` naming each field,
a missing object 404, a state that forbids the action or a suppressed address 409.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from prefsvc.errors import (
    CampaignStateError,
    ImportFileError,
    ImportTooLarge,
    InvalidFields,
    InvalidInput,
    NotFound,
    PrefsvcError,
    RequestStateError,
    Suppressed,
)

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
}


def problem(
    status: int,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"variants.0.subject": ["..."]}``."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = "body" if key == "_schema" and not prefix else str(key)
            path = f"{prefix}.{name}" if prefix else name
            if key == "_schema" and prefix:
                path = prefix
            for field, reasons in flatten(value, path).items():
                flat.setdefault(field, []).extend(reasons)
        return flat
    if isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            return {prefix or "body": list(messages)}
        flat = {}
        for item in messages:
            for field, reasons in flatten(item, prefix).items():
                flat.setdefault(field, []).extend(reasons)
        return flat
    return {prefix or "body": [str(messages)]}


def http_error(error: HTTPException) -> Response:
    """Answer an HTTP error raised in an API view (webargs' 422 carries field messages)."""
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    errors = None
    if messages:
        # webargs nests by location ({"json": {...}}); one location says nothing extra.
        if isinstance(messages, dict) and len(messages) == 1:
            messages = next(iter(messages.values()))
        errors = flatten(messages)
    type_ = "about:blank"
    if errors and code == 422:
        # the same problem as a domain InvalidFields, whichever layer caught the value
        detail, type_ = "some values are not acceptable", "urn:prefsvc:invalid-input"
    elif errors:
        detail = "; ".join(reason for reasons in errors.values() for reason in reasons)
    else:
        detail = error.description
    return problem(code, detail, type_=type_, title=TITLES.get(code, error.name), errors=errors)


def domain_error(error: PrefsvcError) -> Response:
    """Map the domain's errors to problems, once for every route."""
    if isinstance(error, InvalidFields):
        return problem(
            422,
            "some values are not acceptable",
            type_="urn:prefsvc:invalid-input",
            errors=error.fields,
        )
    if isinstance(error, InvalidInput):
        return problem(
            422, str(error), type_="urn:prefsvc:invalid-input", errors={error.field: [error.reason]}
        )
    if isinstance(error, ImportTooLarge):
        return problem(413, str(error), type_="urn:prefsvc:file-too-large")
    if isinstance(error, ImportFileError):
        return problem(
            422, str(error), type_="urn:prefsvc:unreadable-file", errors={"file": [str(error)]}
        )
    if isinstance(error, NotFound):
        return problem(404, str(error), type_="urn:prefsvc:not-found")
    if isinstance(error, Suppressed):
        return problem(409, str(error), type_="urn:prefsvc:suppressed")
    if isinstance(error, CampaignStateError | RequestStateError):
        return problem(409, str(error), type_="urn:prefsvc:wrong-state")
    log.warning("unmapped domain error %s", type(error).__name__)
    return problem(400, str(error), type_="urn:prefsvc:refused")
