"""JSON request bodies parsed with bounds: nesting depth, digits per number, finite numbers only.

Python's parser turns a 2,000-deep nesting into ``RecursionError`` and a 5,000-digit integer
into a ``ValueError`` that is no ``JSONDecodeError``; both escaped Flask and webargs as a 500.
Every body read as JSON (``request.get_json`` through the app's provider, the API's arguments
through ``ArgumentsParser``) goes through ``loads`` here instead, which raises
``JSONDecodeError`` for all of them: a 400 everywhere.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Request
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

MAX_DEPTH = 32  # the API's deepest schema (campaign → variants → fields) is 3
MAX_NUMBER_DIGITS = 64


class UnacceptableJSON(json.JSONDecodeError):
    """Well-formed, perhaps, but beyond what any request of ours needs."""

    def __init__(self, reason: str, doc: str) -> None:
        super().__init__(reason, doc, 0)


def loads(text: str | bytes | bytearray) -> Any:
    """Parse a request body; raise ``JSONDecodeError`` for anything too deep or too long."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise UnacceptableJSON("the body is not UTF-8", "") from error
    doc = text or " "  # webargs reads an empty ``doc`` as "no body at all"

    def number(value: str, convert: type) -> Any:
        if len(value) > MAX_NUMBER_DIGITS:
            raise UnacceptableJSON(f"a number longer than {MAX_NUMBER_DIGITS} characters", doc)
        result = convert(value)
        if isinstance(result, float) and not math.isfinite(result):
            raise UnacceptableJSON("a number too large", doc)
        return result

    def constant(name: str) -> Any:
        raise UnacceptableJSON(f"{name} is not JSON", doc)

    try:
        value = json.loads(
            text,
            parse_int=lambda v: number(v, int),
            parse_float=lambda v: number(v, float),
            parse_constant=constant,
        )
    except RecursionError:
        raise UnacceptableJSON(f"nested deeper than {MAX_DEPTH} levels", doc) from None
    if _depth(value) > MAX_DEPTH:
        raise UnacceptableJSON(f"nested deeper than {MAX_DEPTH} levels", doc)
    return value


def _depth(value: Any) -> int:
    """Measure nesting without recursion (the value may be hundreds of levels deep)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in item)
    return deepest


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading bodies through ``loads`` (``request.get_json`` answers 400)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser reading JSON through ``loads``: an unacceptable body is a 400."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        return loads(data) if data else core.missing

    def _handle_invalid_json_error(self, error: Exception, req: Request, *args, **kwargs):
        reason = error.msg if isinstance(error, UnacceptableJSON) else "Invalid JSON body."
        abort(400, exc=error, messages={"json": [reason]})
