"""The demo's receiver page speaks the admin's languages and says whether each post was signed."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from prefsvc.webhooks import demo_receiver, signing


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def running():
    secret = signing.new_secret()
    port = _free_port()
    received = demo_receiver.start(secret, "127.0.0.1", port)
    return secret, f"http://127.0.0.1:{port}/", received


def _get(url: str, **headers: str) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
        return answer.read().decode()


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    urllib.request.urlopen(request).close()


@pytest.mark.parametrize(
    ("query", "accept", "lang", "heading"),
    [
        ("", "fr-BE,fr;q=0.9", "fr", "Webhooks reçus (les plus récents d’abord)"),
        ("", "en-GB", "en", "Webhooks received (newest first)"),
        ("", "", "nl", "Ontvangen webhooks (nieuwste eerst)"),
        ("?lang=en", "nl-BE", "en", "Webhooks received (newest first)"),
    ],
)
def test_the_page_follows_the_language_rule_of_the_admin(running, query, accept, lang, heading):
    _secret, url, _received = running
    page = _get(url + query, **({"Accept-Language": accept} if accept else {}))
    assert f'<html lang="{lang}">' in page
    assert heading in page
    assert 'href="?lang=' in page  # the other two languages are a click away


def test_each_post_is_shown_with_its_signature_verdict_in_the_readers_language(running):
    secret, url, received = running
    body = b'{"type":"contact.unsubscribed","data":{"topic":"haven"}}'
    stamp = int(time.time())
    _post(url, body, signing.headers([secret], "msg_good", stamp, body))
    _post(url, body, signing.headers([signing.new_secret()], "msg_forged", stamp, body))

    page = _get(url + "?lang=nl")

    assert len(received) == 2
    assert page.count("handtekening klopt niet") == 1
    assert page.count("handtekening klopt<") == 1
    assert "contact.unsubscribed" in page
    assert "Nog niets ontvangen" not in page
