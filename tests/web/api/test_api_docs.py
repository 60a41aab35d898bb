"""The OpenAPI spec is generated from the code, and the docs page shows every route."""

from __future__ import annotations

import re

from markupsafe import escape

from prefsvc.web import SECURITY_HEADERS

METHODS = ("get", "post", "put", "patch", "delete")


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, item[method])
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_the_spec_is_openapi_3_and_needs_no_key(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearer": []}]


def test_every_route_of_the_api_blueprints_is_in_the_spec(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    documented = {(m, p) for m, p, _ in _operations(spec)}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith(
            ("api-docs", "api_docs")
        ):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented
    assert len(documented) >= 30


def test_every_operation_documents_its_roles_and_its_errors(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for method, path, operation in _operations(spec):
        assert "Roles:" in operation["description"], (method, path)
        assert {"401", "403", "default"} <= set(operation["responses"]), (method, path)
    problem = spec["components"]["responses"]["UNPROCESSABLE_ENTITY"]
    assert "application/problem+json" in problem["content"]


def test_the_docs_page_lists_every_route_of_the_spec(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for method, path, operation in _operations(spec):
        assert f"<code>{method} {path}</code>" in html
        assert str(escape(operation["summary"])) in html


def test_the_docs_page_loads_nothing_from_elsewhere_under_the_strict_csp(client):
    page = client.get("/api/v1/docs")
    assert page.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html


def test_api_errors_outside_views_are_problems_too(client):
    response = client.get("/api/v1/no-such-route")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert client.get("/no-such-page").mimetype == "text/html"


def test_swagger_ui_is_served_from_local_files_only(client):
    page = client.get("/api/v1/docs/try")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert not re.search(r"<script>", html)  # no inline script: only files of this server
    with client.get("/api/v1/docs/assets/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == 200
        assert "SwaggerUIBundle" in bundle.get_data(as_text=True)
    assert client.get("/api/v1/docs/assets/LICENSE").status_code == 404
    assert client.get("/api/v1/docs/assets/..%2Fflask_swagger_ui.py").status_code == 404
