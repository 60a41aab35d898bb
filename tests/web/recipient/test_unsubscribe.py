"""The /u pages over HTTP: GET and HEAD change nothing, RFC 8058 one-click, undo, everything."""

from __future__ import annotations

import pytest

from prefsvc.consent import suppression
from prefsvc.models import (
    ContactStatus,
    EventKind,
    SubscriptionStatus,
)
from tests.factories import make_contact
from tests.web.recipient.conftest import ONE_CLICK, events, status

pytestmark = pytest.mark.all_databases


def test_get_names_the_newsletter_and_offers_a_post_button(client, session, ana, newsletter, link):
    response = client.get(link)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Haven &amp; Logistiek" in page
    assert f'<form method="post" action="{link}">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert status(session, ana, newsletter) is SubscriptionStatus.SUBSCRIBED
    assert events(session, ana) == []


def test_head_changes_nothing(client, session, ana, newsletter, link):
    response = client.head(link)
    assert response.status_code == 200
    assert response.get_data() == b""
    assert status(session, ana, newsletter) is SubscriptionStatus.SUBSCRIBED
    assert events(session, ana) == []


def _multipart(boundary: str = "prefsvc-boundary") -> tuple[bytes, str]:
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "empty"])
def test_post_one_click_needs_no_cookie_and_never_redirects(
    app, session, ana, newsletter, courses, link, encoding
):
    client = app.test_client(use_cookies=False)
    if encoding == "urlencoded":
        response = client.post(
            link,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    elif encoding == "multipart":
        body, content_type = _multipart()
        response = client.post(link, data=body, content_type=content_type)
    else:
        response = client.post(link)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Location" not in response.headers
    assert "U ontvangt “Haven &amp; Logistiek” niet meer." in response.get_data(as_text=True)
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED
    assert status(session, ana, courses) is SubscriptionStatus.SUBSCRIBED
    [event] = events(session, ana)
    assert (event.kind, event.channel, event.topic_id) == (
        EventKind.UNSUBSCRIBED,
        "one-click",
        newsletter.id,
    )


def test_repeated_one_click_is_harmless_and_recorded_once(client, session, ana, link):
    first = client.post(link, data=ONE_CLICK)
    second = client.post(link, data=ONE_CLICK)
    assert first.status_code == second.status_code == 200
    assert [e.kind for e in events(session, ana)] == [EventKind.UNSUBSCRIBED]


def test_confirmation_offers_undo_everything_and_the_preference_centre(client, ana, link, prefs):
    page = client.post(link, data=ONE_CLICK).get_data(as_text=True)
    assert f'action="{link}/undo"' in page
    assert f'action="{link}/all"' in page
    assert f'href="{prefs}"' in page


def test_every_person_gets_their_own_links_on_the_same_page(
    client, session, signer, ana, newsletter, link, prefs
):
    """The page is rendered once per topic and language; only the tokens differ per person."""
    bo = make_contact(session, "bo@example.org", topics=[newsletter])
    session.commit()
    bo_link = f"/u/{signer.unsubscribe_token(bo.public_id, newsletter.id)}"
    bo_prefs = f"/p/{signer.preferences_token(bo.public_id)}"

    pages = {
        who: (client.get(own).get_data(as_text=True), client.post(own).get_data(as_text=True))
        for who, own in (("ana", link), ("bo", bo_link), ("ana again", link))
    }

    for who, own, own_prefs, other in (
        ("ana", link, prefs, bo_link),
        ("bo", bo_link, bo_prefs, link),
        ("ana again", link, prefs, bo_link),
    ):
        offer, done = pages[who]
        assert own in offer and f'href="{own_prefs}"' in offer
        assert f'action="{own}/undo"' in done and f'href="{own_prefs}"' in done
        assert other.removeprefix("/u/") not in offer + done
        assert "StandIn" not in offer + done
    assert pages["ana"][1] == pages["ana again"][1]


def test_undo_resubscribes_and_records_it_as_such(client, session, ana, newsletter, link):
    client.post(link, data=ONE_CLICK)
    response = client.post(f"{link}/undo")
    assert response.status_code == 200
    assert "U bent opnieuw ingeschreven" in response.get_data(as_text=True)
    assert status(session, ana, newsletter) is SubscriptionStatus.SUBSCRIBED
    last = events(session, ana)[-1]
    assert (last.kind, last.channel) == (EventKind.RESUBSCRIBED, "undo")


def test_unsubscribe_from_everything_suppresses_the_address_for_good(
    client, session, settings, ana, newsletter, courses, link
):
    client.post(link, data=ONE_CLICK)
    response = client.post(f"{link}/all")
    assert response.status_code == 200
    assert "U bent uitgeschreven voor al onze mailings" in response.get_data(as_text=True)
    session.expire_all()
    assert ana.status is ContactStatus.UNSUBSCRIBED
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")
    assert status(session, ana, courses) is SubscriptionStatus.UNSUBSCRIBED
    assert events(session, ana)[-1].kind is EventKind.OBJECTION

    undo = client.post(f"{link}/undo")
    assert undo.status_code == 200
    assert "Opnieuw inschrijven" not in undo.get_data(as_text=True)
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED
    assert events(session, ana)[-1].kind is EventKind.OBJECTION


def test_everything_page_explains_that_it_is_final(client, ana, link):
    page = client.post(link, data=ONE_CLICK).get_data(as_text=True)
    assert "Dit is definitief" in page
