"""Headers every answer carries; ``Secure`` cookies and HSTS only when BASE_URL is https."""

from __future__ import annotations

import pytest

from prefsvc.access import staff
from tests.web.admin.conftest import PASSWORD, sign_in

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture(params=["https://news.example.org", "http://127.0.0.1:5000"])
def settings(settings, request):
    return settings.with_(base_url=request.param)


@pytest.fixture
def signed_in(client, session, clock):
    staff.create(session, "ana", PASSWORD, "admin", now=clock())
    session.commit()
    return sign_in(client, "ana")


def test_https_base_url_gets_secure_cookies_and_hsts_http_gets_neither(settings, signed_in):
    cookies = signed_in.headers.getlist("Set-Cookie")
    assert cookies
    https = settings.base_url.startswith("https://")
    assert all(("; Secure" in cookie) is https for cookie in cookies)
    assert (signed_in.headers.get("Strict-Transport-Security") == HSTS) is https


@pytest.mark.parametrize("path", ["/p", "/healthz", "/api/v1/topics", "/no-such-page"])
def test_every_answer_carries_hsts_under_https(settings, client, path):
    response = client.get(path)
    expected = HSTS if settings.base_url.startswith("https://") else None
    assert response.headers.get("Strict-Transport-Security") == expected
    assert response.headers["X-Content-Type-Options"] == "nosniff"
