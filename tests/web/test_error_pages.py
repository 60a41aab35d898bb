"""Every HTTP error is a readable page or a problem, never a 500: oversized bodies included."""

from __future__ import annotations

import io

import pytest

TOO_LARGE = b"a=" + b"x" * (17 * 1024 * 1024)
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("path", ["/p", "/admin/login", "/admin/import"])
def test_an_oversized_form_on_an_html_route_gets_a_readable_413(app, path):
    client = app.test_client()
    response = client.post(path, data=TOO_LARGE, content_type=FORM)
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "413" in response.get_data(as_text=True)


def test_an_oversized_body_sent_in_chunks_gets_413_too(app):
    client = app.test_client()

    response = client.post(
        "/p",
        input_stream=io.BytesIO(TOO_LARGE),
        content_type=FORM,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_request_get_json_refuses_deep_nesting_with_a_400(app):
    from flask import request

    with app.test_request_context(
        "/", method="POST", data="[" * 2000 + "]" * 2000, content_type="application/json"
    ):
        from werkzeug.exceptions import BadRequest

        with pytest.raises(BadRequest):
            request.get_json()
