"""What every recipient page shares: language links, headers, own assets, redacted logs."""

from __future__ import annotations

import logging
import re

import pytest

from tests.web.recipient.conftest import ONE_CLICK

pytestmark = pytest.mark.all_databases


def test_every_page_offers_the_three_languages(client, link):
    page = client.get(link).get_data(as_text=True)
    for code, name in (("nl", "Nederlands"), ("fr", "Français"), ("en", "English")):
        assert f'<a href="{link}?lang={code}" hreflang="{code}" lang="{code}"' in page
        assert f">{name}</a>" in page


@pytest.mark.parametrize(
    ("accept", "text"),
    [
        ("fr-BE,fr;q=0.9", "Ce lien n’est pas valide ou ne fonctionne plus."),
        ("nl-BE", "Deze link is ongeldig of werkt niet meer."),
        ("en-GB", "This link is not valid or no longer works."),
    ],
)
def test_invalid_link_page_follows_the_browser_language(client, accept, text):
    response = client.get("/u/not-a-token", headers={"Accept-Language": accept})
    assert response.status_code == 404
    assert text in response.get_data(as_text=True)


def test_token_pages_carry_security_headers_and_are_never_cached(client, link, prefs):
    responses = [
        client.get(link),
        client.head(link),
        client.post(link, data=ONE_CLICK),
        client.post(f"{link}/undo"),
        client.get(prefs),
        client.get("/u/not-a-token"),
    ]
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_need_no_script_and_load_only_our_own_stylesheet(client, link, prefs):
    for page in (client.get(link).get_data(as_text=True), client.get(prefs).get_data(as_text=True)):
        assert "<script" not in page
        assert "style=" not in page
        # Nothing loaded from elsewhere (a link to the privacy statement is not a load).
        assert re.findall(r'(?:<link [^>]*href|src)="(https?:)?//', page) == []
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)">', page).group(1)
        with client.get(stylesheet) as css:
            assert css.status_code == 200
            assert css.mimetype == "text/css"
            assert "min-height: 48px" in css.get_data(as_text=True)


@pytest.mark.parametrize("logger", ["werkzeug", "gunicorn.access", "prefsvc"])
def test_request_logs_never_hold_a_token(app, caplog, link, prefs, logger):
    token = link.removeprefix("/u/")
    with caplog.at_level(logging.INFO, logger=logger):
        logging.getLogger(logger).info('127.0.0.1 - - "%s %s HTTP/1.1" 200 -', "POST", link)
        logging.getLogger(logger).error("Exception on %s [GET]", prefs)
    assert token not in caplog.text
    assert prefs.removeprefix("/p/") not in caplog.text
    assert '"POST /u/[token] HTTP/1.1" 200' in caplog.text
    assert "Exception on /p/[token] [GET]" in caplog.text


def test_every_page_names_who_is_asking_and_links_the_privacy_statement(
    client, settings, link, prefs
):
    for url in (link, prefs, "/p", "/u/not-a-token"):
        page = client.get(f"{url}?lang=fr", headers={"Accept-Language": "fr"}).get_data(
            as_text=True
        )
        assert settings.organisation_name in page and settings.organisation_address in page
        assert f'<a href="{settings.privacy_url}">Déclaration de confidentialité</a>' in page


@pytest.mark.parametrize("logo", [None, "https://cdn.haven.example/logo.png"])
def test_the_logo_is_shown_and_allowed_by_the_page_policy(app, client, link, logo):
    from prefsvc.settings import SETTINGS_KEY
    from prefsvc.web import security_headers

    settings = app.extensions[SETTINGS_KEY].with_(logo_url=logo)
    app.extensions[SETTINGS_KEY] = settings
    page = client.get(link).get_data(as_text=True)
    if logo is None:
        assert 'class="logo"' not in page
    else:
        assert f'<img src="{logo}" alt="{settings.organisation_name}" class="logo">' in page
        policy = security_headers(settings)["Content-Security-Policy"]
        assert "img-src 'self' data: https://cdn.haven.example;" in policy
