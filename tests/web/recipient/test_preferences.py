"""The preference centre over HTTP: topics, language, pause, details, copy and erasure."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from prefsvc.consent import suppression
from prefsvc.models import (
    Contact,
    ContactStatus,
    EventKind,
    Language,
    SubscriptionStatus,
)
from tests.web.recipient.conftest import ONE_CLICK, TODAY, csrf_token, events, status

pytestmark = pytest.mark.all_databases


def test_head_on_the_preference_centre_changes_nothing(client, session, ana, prefs):
    response = client.head(prefs)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert events(session, ana) == []


def test_preference_centre_shows_details_topics_and_language(
    client, signer, ana, newsletter, courses, prefs
):
    client.post(f"/u/{signer.unsubscribe_token(ana.public_id, courses.id)}")
    page = client.get(prefs).get_data(as_text=True)
    assert "<h1>Uw voorkeuren</h1>" in page
    assert "Ana Peeters" in page and "ana@example.org" in page and "Haven NV" in page
    checkbox = f'<input type="checkbox" id="topic-{newsletter.id}" name="topics"'
    assert f'{checkbox} value="{newsletter.id}" checked' in page
    assert (
        f'<input type="checkbox" id="topic-{courses.id}" name="topics" value="{courses.id}">'
        in page
    )
    assert f'<label for="topic-{newsletter.id}">Haven &amp; Logistiek</label>' in page
    assert "Opleidingen voor de haven, elke maand." in page
    assert '<option value="nl" lang="nl" selected>Nederlands</option>' in page


def test_preference_centre_refuses_a_post_without_csrf_token(
    client, session, ana, newsletter, prefs
):
    response = client.post(prefs, data={"action": "save", "language": "fr"})
    assert response.status_code == 400
    assert "Er ging iets mis met dit formulier" in response.get_data(as_text=True)
    session.expire_all()
    assert ana.language is Language.NL
    assert events(session, ana) == []


def test_preference_centre_saves_topics_and_language(
    client, session, ana, newsletter, courses, prefs
):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    response = client.post(
        prefs,
        data={"csrf_token": token, "action": "save", "topics": [str(courses.id)], "language": "fr"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == prefs
    page = client.get(prefs).get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Vos préférences ont été enregistrées." in page
    session.expire_all()
    assert ana.language is Language.FR
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED
    assert status(session, ana, courses) is SubscriptionStatus.SUBSCRIBED
    assert ana.window_anchor == TODAY
    assert [(e.kind, e.channel) for e in events(session, ana)] == [
        (EventKind.UNSUBSCRIBED, "preference-centre"),
        (EventKind.PREFERENCES, "preference-centre"),
    ]
    assert events(session, ana)[-1].detail == {"language": "fr"}


def test_preference_centre_records_nothing_when_nothing_changed(
    client, session, ana, newsletter, courses, prefs
):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    topics = [str(newsletter.id), str(courses.id)]
    client.post(
        prefs, data={"csrf_token": token, "action": "save", "topics": topics, "language": "nl"}
    )
    assert events(session, ana) == []
    assert session.get(Contact, ana.id).window_anchor == date(2026, 1, 1)


def test_preference_centre_pauses_and_resumes_all_mail(client, session, ana, prefs):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    client.post(prefs, data={"csrf_token": token, "action": "pause", "months": "3"})
    session.expire_all()
    assert ana.paused_until == date(2026, 6, 10)
    page = client.get(prefs).get_data(as_text=True)
    assert "Vanaf 10 juni 2026 schrijven we u weer." in page
    client.post(prefs, data={"csrf_token": token, "action": "resume"})
    session.expire_all()
    assert ana.paused_until is None
    assert [(e.kind, e.detail) for e in events(session, ana)] == [
        (EventKind.PAUSED, {"months": 3, "until": "2026-06-10"}),
        (EventKind.PAUSED, {"until": None}),
    ]


def test_preference_centre_unsubscribe_from_everything_is_final(
    client, session, settings, ana, newsletter, prefs
):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    client.post(prefs, data={"csrf_token": token, "action": "all"})
    session.expire_all()
    assert ana.status is ContactStatus.UNSUBSCRIBED
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")
    page = client.get(prefs).get_data(as_text=True)
    assert 'name="topics"' not in page

    client.post(
        prefs,
        data={
            "csrf_token": token,
            "action": "save",
            "topics": [str(newsletter.id)],
            "language": "nl",
        },
    )
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED
    assert "we u niet opnieuw inschrijven" in client.get(prefs).get_data(as_text=True)


def _rights(session) -> list:
    from prefsvc.models import RightsRequest

    session.expire_all()
    return list(session.scalars(select(RightsRequest).order_by(RightsRequest.id)))


def _mailed_link(outbox) -> str:
    from prefsvc.queue import broker

    broker.queue().join(timeout_ms=10_000)
    [mail] = [m for m in outbox() if "/p/" in m.get_content() and "24" in m.get_content()]
    return re.search(r"https://news\.example\.org(/p/\S+)", mail.get_content()).group(1)


def test_preference_centre_shows_the_data_we_hold_and_the_history(
    client, session, ana, newsletter, link, prefs
):
    client.post(link, data=ONE_CLICK)
    page = client.get(prefs).get_data(as_text=True)
    assert "<summary>Alles tonen wat we bijhouden</summary>" in page
    assert "Uitgeschreven: Haven &amp; Logistiek" in page
    assert "(uitschrijflink)" in page
    assert 'value="Haven NV"' in page


def test_correcting_details_is_recorded_and_moves_the_anchor(client, session, ana, prefs):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    form = {
        "csrf_token": token,
        "action": "details",
        "first_name": " Anna ",
        "last_name": "Peeters",
    }
    response = client.post(prefs, data={**form, "organisation": ""})
    assert response.status_code == 303
    assert "Uw gegevens zijn verbeterd." in client.get(prefs).get_data(as_text=True)
    session.expire_all()
    assert (ana.first_name, ana.organisation) == ("Anna", None)
    assert ana.window_anchor == TODAY
    [event] = events(session, ana)
    assert (event.kind, event.channel) == (EventKind.RECTIFIED, "preference-centre")
    assert event.detail == {"fields": ["first_name", "organisation"]}


def test_a_bad_correction_gets_a_readable_error_and_changes_nothing(client, session, ana, prefs):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    form = {"csrf_token": token, "action": "details", "first_name": "x" * 201}
    response = client.post(prefs, data=form)
    assert response.status_code == 400
    assert "Gebruik hoogstens 200 tekens, op één regel." in response.get_data(as_text=True)
    session.expire_all()
    assert ana.first_name == "Ana"
    assert events(session, ana) == []


def test_a_copy_is_given_only_after_a_fresh_mailed_link(client, session, outbox, ana, prefs):
    from prefsvc.models import RightsKind, RightsStatus

    token = csrf_token(client.get(prefs).get_data(as_text=True))
    response = client.post(prefs, data={"csrf_token": token, "action": "access"})
    assert response.status_code == 303
    assert "Location" in response.headers and "json" not in response.mimetype
    [request] = _rights(session)
    assert (request.kind, request.status) == (RightsKind.ACCESS, RightsStatus.RECEIVED)

    fresh = _mailed_link(outbox)
    page = client.get(fresh).get_data(as_text=True)
    assert '<h2 id="confirm-heading">Bevestig uw aanvraag</h2>' in page
    download = client.post(fresh, data={"csrf_token": csrf_token(page), "action": "confirm"})
    assert download.status_code == 200
    assert download.mimetype == "application/json"
    assert download.headers["Cache-Control"] == "no-store"
    assert download.get_json()["contact"]["email"] == "ana@example.org"
    [request] = _rights(session)
    assert request.status is RightsStatus.DONE
    assert request.verification == "email-link"
    assert request.verified_at is not None
    assert events(session, ana)[-1].kind is EventKind.EXPORTED
    again = client.post(fresh, data={"csrf_token": csrf_token(page), "action": "confirm"})
    assert again.status_code == 400  # the request is closed; a second confirm does nothing


def test_erasure_from_a_fresh_link_erases_and_kills_every_old_link(
    client, session, settings, outbox, ana, link, prefs
):
    from prefsvc.models import RightsKind, RightsStatus

    token = csrf_token(client.get(prefs).get_data(as_text=True))
    client.post(prefs, data={"csrf_token": token, "action": "erasure"})
    fresh = _mailed_link(outbox)
    page = client.get(fresh).get_data(as_text=True)
    refused = client.post(fresh, data={"csrf_token": csrf_token(page), "action": "confirm"})
    assert refused.status_code == 400  # the "I understand" box was not ticked
    assert session.get(Contact, ana.id).email == "ana@example.org"

    form = {"csrf_token": csrf_token(page), "action": "confirm", "understood": "yes"}
    done = client.post(fresh, data=form)
    assert done.status_code == 200
    assert "<h1>Uw gegevens zijn gewist</h1>" in done.get_data(as_text=True)
    session.expire_all()
    assert ana.status is ContactStatus.ERASED and ana.email is None
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")
    [request] = _rights(session)
    assert (request.kind, request.status) == (RightsKind.ERASURE, RightsStatus.DONE)
    for old in (link, prefs, fresh):
        assert client.get(old).status_code == 404


def test_a_plain_preference_link_cannot_download_or_erase_at_once(client, session, ana, prefs):
    page = client.get(prefs).get_data(as_text=True)
    assert 'value="confirm"' not in page
    token = csrf_token(page)
    client.post(prefs, data={"csrf_token": token, "action": "erasure", "understood": "yes"})
    assert client.post(prefs, data={"csrf_token": token, "action": "confirm"}).status_code == 400
    session.expire_all()
    assert ana.status is ContactStatus.ACTIVE


def test_asking_twice_keeps_one_register_entry_and_mails_a_link_each_time(
    client, session, outbox, ana, prefs
):
    from prefsvc.queue import broker

    token = csrf_token(client.get(prefs).get_data(as_text=True))
    for _ in range(2):
        client.post(prefs, data={"csrf_token": token, "action": "access"})
    assert len(_rights(session)) == 1
    broker.queue().join(timeout_ms=10_000)
    subjects = [m["Subject"] for m in outbox()]
    assert subjects == ["Bevestig uw aanvraag", "Bevestig uw aanvraag"]


def test_on_our_list_since_is_the_first_day_in_the_history(client, session, ana, prefs):
    from datetime import UTC, datetime

    from prefsvc.consent import changes
    from prefsvc.models import EventKind

    # Imported late in the evening of 9 March UTC: 10 March in Brussels, as the history says.
    changes.record(
        session,
        ana,
        EventKind.IMPORTED,
        channel="import",
        now=datetime(2026, 3, 9, 23, 30, tzinfo=UTC),
    )
    session.commit()
    page = client.get(f"{prefs}?lang=en").get_data(as_text=True)
    since = re.search(r"On our list since</dt>\s*<dd>([^<]+)</dd>", page).group(1)
    assert since == "March 10, 2026"
    assert "10 Mar 2026, 00:30" in page
