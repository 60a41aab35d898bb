"""The demo's Maildir outbox page: in the reader's language, times in ``TIMEZONE``."""

from __future__ import annotations

from datetime import UTC, datetime

from prefsvc.mail import notices


def test_the_outbox_page_speaks_dutch_and_shows_brussels_time(client, settings):
    sent = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # 10 March, 00:30 in Brussels
    notices.send(
        settings,
        to="ana@example.org",
        notice=notices.Notice(subject="Hallo", text="Tekst\n"),
        now=sent,
    )
    page = client.get("/outbox/?lang=nl").get_data(as_text=True)
    assert "<h1>Uitgaande post</h1>" in page
    assert '<th scope="col">Aan</th>' in page
    assert "2026-03-10 00:30" in page


def test_an_empty_outbox_says_so_in_french(client):
    page = client.get("/outbox/?lang=fr").get_data(as_text=True)
    assert "Pas encore de mail." in page
