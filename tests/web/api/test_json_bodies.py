"""Request bodies the API cannot take: too large (413), too deep or too long a number (400)."""

from __future__ import annotations

import pytest

from prefsvc.web.api.problems import PROBLEM


@pytest.mark.parametrize("path", ["/api/v1/contacts", "/api/v1/topics"])
def test_an_oversized_body_gets_a_413_problem(app, bearer, path):
    client = app.test_client()
    body = b'{"email": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    response = client.post(path, data=body, content_type="application/json", headers=bearer())
    assert response.status_code == 413
    assert response.mimetype == PROBLEM
    assert response.get_json()["status"] == 413


PATHOLOGICAL = {
    "deep list": "[" * 2000 + "]" * 2000,
    "deep object": '{"a":' * 2000 + "1" + "}" * 2000,
    "deep under a field": '{"email": "ana@example.org", "x": ' + "[" * 2000 + "]" * 2000 + "}",
    "5,000-digit number": '{"email": "ana@example.org", "x": ' + "9" * 5000 + "}",
    "5,000-digit float": '{"email": "ana@example.org", "x": ' + "9" * 5000 + ".5}",
    "NaN": '{"email": "ana@example.org", "x": NaN}',
}


@pytest.mark.parametrize("body", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
@pytest.mark.parametrize(
    "path", ["/api/v1/contacts", "/api/v1/topics", "/api/v1/campaigns", "/api/v1/rights-requests"]
)
def test_pathological_json_gets_a_400_problem_not_a_500(app, bearer, path, body):
    response = app.test_client().post(
        path, data=body, content_type="application/json", headers=bearer()
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.mimetype == PROBLEM
    assert response.get_json()["errors"]["body"]


def test_ordinary_nesting_and_numbers_still_parse(app):
    from prefsvc.web import json_bodies

    assert json_bodies.loads('{"a": [[1, 2.5], {"b": -3}], "c": 12345678901234567890}') == {
        "a": [[1, 2.5], {"b": -3}],
        "c": 12345678901234567890,
    }
