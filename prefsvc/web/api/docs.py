"""``/api/v1/docs``: the OpenAPI spec rendered as one self-contained page.

Built from the same spec as ``/api/v1/openapi.json`` (so every route appears), with no
script and no external asset: the strict Content-Security-Policy holds here too.
``/api/v1/docs/try`` is Swagger UI on the same spec, its files served from the
flask-swagger-ui wheel and started by a script file of ours (no inline script, no CDN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template, send_from_directory
from markdown_it import MarkdownIt
from markupsafe import Markup

from prefsvc.web.api import EXTENSION_KEY, PREFIX

bp = Blueprint("api_docs_page", __name__, url_prefix=PREFIX)
blueprints: list = []  # a plain blueprint, not part of the spec; registered by init_app
METHODS = ("get", "post", "put", "patch", "delete")
# CommonMark with tables; raw HTML in a description is shown as text, never rendered.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


@bp.app_template_filter("markdown")
def markdown(text: str | None) -> Markup:
    """Render a description of the spec (Markdown, as OpenAPI allows) into safe HTML."""
    return Markup(_MARKDOWN.render(text or ""))  # noqa: S704 - html off: the source is escaped


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return name, spec["components"]["schemas"].get(name, {})
    return None, schema


def _type(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    name, schema = _resolve(spec, schema)
    if name:
        return name
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"] if v is not None)
    if schema.get("type") == "array":
        return f"list of {_type(spec, schema.get('items', {}))}"
    kind = schema.get("type", "object")
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _fields(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    _, schema = _resolve(spec, schema)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": _type(spec, prop),
            "required": name in required,
            "nullable": bool(prop.get("nullable")),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten the spec into the rows the page shows, in path order."""
    rows = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {})
            media, content = next(iter(body.items()), (None, {}))
            responses = []
            for code, response in op.get("responses", {}).items():
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[-1]
                    response = spec["components"]["responses"].get(name, {})
                schema = next(iter(response.get("content", {}).values()), {}).get("schema")
                responses.append(
                    {
                        "code": code,
                        "description": response.get("description", ""),
                        "type": _type(spec, schema) if schema else None,
                    }
                )
            rows.append(
                {
                    "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                    "method": method.upper(),
                    "path": path,
                    "tag": (op.get("tags") or [""])[0],
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": _type(spec, p.get("schema", {})),
                        }
                        for p in [*item.get("parameters", []), *op.get("parameters", [])]
                    ],
                    "body_media": media,
                    "body": _fields(spec, content.get("schema", {})) if media else [],
                    "responses": responses,
                }
            )
    return rows


@bp.get("/docs")
def docs():
    """Render the API documentation page from the generated spec."""
    spec = current_app.extensions[EXTENSION_KEY].spec.to_dict()
    return render_template("api/docs.html", spec=spec, operations=operations(spec))


# --- interactive: Swagger UI from the flask-swagger-ui package's files ---------------------

SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


def _swagger_dist() -> str:
    """Return the folder of Swagger UI's files shipped in the flask-swagger-ui wheel."""
    import flask_swagger_ui  # only to find its files, when someone opens the interactive page

    return str(Path(flask_swagger_ui.__file__).resolve().parent / "dist")


@bp.get("/docs/try")
def interactive():
    """Swagger UI on the generated spec: try every route with your key, from this server only."""
    return render_template("api/swagger.html")


@bp.get("/docs/assets/<name>")
def swagger_asset(name: str):
    if name not in SWAGGER_FILES:
        abort(404)
    return send_from_directory(_swagger_dist(), name, max_age=86_400)
