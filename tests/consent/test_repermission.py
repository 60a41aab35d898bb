"""Re-permission: asked 60 days and reminded 14 days before the window ends, once each; renewing
through the page moves the anchor to that day."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from prefsvc.campaigns import audience
from prefsvc.consent import changes as consent
from prefsvc.consent import repermission, suppression
from prefsvc.mail import kit, notice_kinds
from prefsvc.models import (
    ConsentEvent,
    ContactStatus,
    EventKind,
    OutboxJob,
    RepermissionKind,
    RepermissionMail,
    SubscriptionStatus,
    SuppressionReason,
)
from prefsvc.privacy import erasure, retention
from prefsvc.queue import broker, outbox, scheduler
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.all_databases

TODAY = date(2026, 3, 10)  # the clock fixture's day
DUE_ANCHOR = date(2021, 5, 9)  # expires 2026-05-09: exactly 60 days after TODAY
REMINDER_DAY = date(2026, 4, 25)  # 14 days before 2026-05-09
LINK = re.compile(r"https://news\.example\.org/r/(\S+)")


def _at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)


class Notified(list):
    def __call__(self, kind, contact_id, params):
        self.append((kind, contact_id, params))


def _tick_on_the_queue(session, settings, now):
    """Tick; the notices it holds are relayed to the app's task queue (``join`` waits)."""
    report = scheduler.tick(session, settings, now=now)
    broker.queue().jobs_held()
    return report


def _held_notices(session):
    """Take the notices held in the outbox, as the relay would (without queueing them)."""
    held = outbox.held(session, "send_notice")
    session.execute(delete(OutboxJob))
    session.commit()
    return [tuple(args) for args in held]


def _tick(session, settings, now):
    report = scheduler.tick(session, settings, now=now)
    queued = Notified()
    queued.extend(_held_notices(session))
    return report, queued


@pytest.fixture
def topic(session):
    return make_topic(session, slug="nieuwe-opleidingen", name="Nieuwe opleidingen")


def test_request_goes_sixty_days_before_the_window_ends_and_not_earlier(session, settings, topic):
    due = make_contact(session, "due@example.org", anchor=DUE_ANCHOR, topics=[topic])
    make_contact(
        session, "later@example.org", anchor=DUE_ANCHOR + timedelta(days=1), topics=[topic]
    )
    session.commit()

    report, queued = _tick(session, settings, _at(TODAY))

    assert queued == [("repermission_request", due.id, {"anchor": "2021-05-09"})]
    assert (report.repermission_requests, report.repermission_reminders) == (1, 0)


def test_request_is_sent_once_per_window_however_often_the_scheduler_ticks(
    session, settings, topic
):
    make_contact(session, "due@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()

    _, first = _tick(session, settings, _at(TODAY))
    _, same_day = _tick(session, settings, _at(TODAY, 15))
    _, next_day = _tick(session, settings, _at(TODAY + timedelta(days=1)))

    assert (len(first), same_day, next_day) == (1, [], [])
    assert session.scalar(select(func.count()).select_from(RepermissionMail)) == 1


def test_a_scheduler_that_was_down_still_asks_everyone_once(session, settings, topic):
    make_contact(session, "due@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()

    _, queued = _tick(session, settings, _at(TODAY + timedelta(days=5)))

    assert [kind for kind, _, _ in queued] == ["repermission_request"]


def test_reminder_goes_fourteen_days_before_the_end_once(session, settings, clock, topic):
    person = make_contact(session, "due@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    _tick(session, settings, _at(TODAY))

    _, day_before = _tick(session, settings, _at(REMINDER_DAY - timedelta(days=1)))
    _, on_the_day = _tick(session, settings, _at(REMINDER_DAY))
    _, after = _tick(session, settings, _at(REMINDER_DAY + timedelta(days=3)))

    assert day_before == []
    assert on_the_day == [("repermission_reminder", person.id, {"anchor": "2021-05-09"})]
    assert after == []
    kinds = set(session.scalars(select(RepermissionMail.kind)))
    assert kinds == {RepermissionKind.REQUEST, RepermissionKind.REMINDER}


def test_no_reminder_right_after_a_late_request(session, settings, topic):
    # Imported with a window ending in ten days: asked once, not reminded the next day.
    make_contact(session, "late@example.org", anchor=date(2021, 3, 20), topics=[topic])
    session.commit()

    _, first = _tick(session, settings, _at(TODAY))
    _, next_day = _tick(session, settings, _at(TODAY + timedelta(days=1)))

    assert [kind for kind, _, _ in first] == ["repermission_request"]
    assert next_day == []


def test_the_day_is_the_brussels_day_not_the_utc_day(session, settings, topic):
    # 2026-03-09 23:30 UTC is already 10 March in Brussels: the window ends in 60 days there.
    make_contact(session, "due@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()

    _, in_utc_evening = _tick(session, settings, datetime(2026, 3, 9, 22, 59, tzinfo=UTC))
    _, after_brussels_midnight = _tick(session, settings, datetime(2026, 3, 9, 23, 0, tzinfo=UTC))

    assert in_utc_evening == []
    assert len(after_brussels_midnight) == 1


def test_expired_windows_are_not_asked(session, settings, topic):
    make_contact(session, "expired@example.org", anchor=date(2021, 3, 10), topics=[topic])
    session.commit()

    _, queued = _tick(session, settings, _at(TODAY))

    assert queued == []


def test_people_who_left_or_were_removed_are_never_asked(session, settings, clock, topic):
    key = settings.suppression_key
    objector = make_contact(session, "no@example.org", anchor=DUE_ANCHOR, topics=[topic])
    consent.object_to_all(session, objector, channel="web", now=clock(), suppression_key=key)
    erased = make_contact(session, "gone@example.org", anchor=DUE_ANCHOR, topics=[topic])
    erasure.erase(session, erased, settings=settings, now=clock())
    anonymised = make_contact(session, "anon@example.org", anchor=DUE_ANCHOR, topics=[topic])
    retention.anonymise(session, anonymised, now=clock(), today=TODAY)
    left_every_topic = make_contact(session, "left@example.org", anchor=DUE_ANCHOR, topics=[topic])
    consent.unsubscribe(
        session, left_every_topic, topic, channel="one-click", now=clock(), today=TODAY
    )
    left_every_topic.window_anchor = DUE_ANCHOR  # keep the test about the subscription only
    suppressed = make_contact(session, "complained@example.org", anchor=DUE_ANCHOR, topics=[topic])
    suppression.add(session, key, suppressed.email, SuppressionReason.COMPLAINT)
    asked = make_contact(session, "yes@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()

    _, queued = _tick(session, settings, _at(TODAY))

    assert [contact_id for _, contact_id, _ in queued] == [asked.id]


# --- the mail, the page, the renewal ----------------------------------------------------


@pytest.mark.parametrize(
    ("language", "subject", "button"),
    [
        ("nl", "Mogen we u op de hoogte blijven houden van onze opleidingen?", "Ja, houd mij"),
        ("fr", "Pouvons-nous continuer à vous informer de nos formations\u202f?", "Oui, tenez-moi"),
        ("en", "Shall we keep you informed about our trainings?", "Yes, keep me informed"),
    ],
)
def test_request_mail_asks_in_the_persons_language_with_one_button(
    app, session, settings, outbox, topic, language, subject, button
):
    make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic], language=language)
    session.commit()

    _tick_on_the_queue(session, settings, _at(TODAY))
    broker.queue().join(timeout_ms=10_000)

    [message] = outbox()
    assert message["To"] == "ana@example.org"
    assert message["Subject"] == subject
    assert message["List-Unsubscribe"] is None
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert button in text and button in html
    assert {"nl": "9 mei 2026", "fr": "9 mai 2026", "en": "May 9, 2026"}[language] in text
    assert len(set(LINK.findall(text))) == 1
    assert html.count("/r/") == 1


def test_reminder_mail_says_it_is_a_reminder(app, session, settings, outbox, topic):
    make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic], language="nl")
    session.commit()
    _tick_on_the_queue(session, settings, _at(TODAY))
    _tick_on_the_queue(session, settings, _at(REMINDER_DAY))
    broker.queue().join(timeout_ms=10_000)

    subjects = [m["Subject"] for m in outbox()]

    assert sorted(subjects) == [
        "Herinnering: mogen we u op de hoogte blijven houden van onze opleidingen?",
        "Mogen we u op de hoogte blijven houden van onze opleidingen?",
    ]


def test_a_mail_queued_before_the_person_renewed_is_not_sent(app, session, settings, clock, topic):
    person = make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    _, queued = _tick(session, settings, _at(TODAY))
    repermission.renew(
        session, person, now=clock(), today=TODAY, suppression_key=settings.suppression_key
    )
    session.commit()

    [(kind, contact_id, params)] = queued
    sent = notice_kinds.deliver(
        session, settings, kind=kind, contact_id=contact_id, params=params, now=clock()
    )

    assert sent is None


def _renewal_link(app, session, settings, outbox, contact) -> str:
    _tick_on_the_queue(session, settings, _at(TODAY))
    broker.queue().join(timeout_ms=10_000)
    [message] = outbox()
    [url] = set(LINK.findall(message.get_body(("plain",)).get_content()))
    return "/r/" + url


def test_the_link_shows_a_page_and_changes_nothing(app, session, settings, outbox, client, topic):
    person = make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    path = _renewal_link(app, session, settings, outbox, person)
    events = session.scalar(select(func.count()).select_from(ConsentEvent))

    page = client.get(path)
    head = client.head(path)

    assert page.status_code == head.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    body = page.get_data(as_text=True)
    assert "Mogen we u op de hoogte blijven houden?" in body
    assert '<form method="post"' in body and "9 mei 2026" in body
    session.expire_all()
    assert person.window_anchor == DUE_ANCHOR
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == events


def test_pressing_the_button_renews_from_that_day(
    app, session, settings, outbox, client, clock, topic
):
    person = make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    path = _renewal_link(app, session, settings, outbox, person)
    clock.set(_at(TODAY + timedelta(days=20)))

    answer = client.post(path)  # no cookie, no CSRF token: the signed link is the capability
    again = client.post(path)

    assert answer.status_code == again.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Bedankt, we houden u op de hoogte" in answer.get_data(as_text=True)
    assert "29 maart 2031" in answer.get_data(as_text=True)  # the last day of the new window
    session.expire_all()
    assert person.window_anchor == date(2026, 3, 30)
    renewals = session.scalars(
        select(ConsentEvent).where(ConsentEvent.kind == EventKind.RENEWED)
    ).all()
    assert [(e.channel, e.detail) for e in renewals] == [
        ("renewal-page", {"previous_anchor": "2021-05-09", "anchor": "2026-03-30"})
    ]


def test_after_renewing_no_reminder_comes(app, session, settings, outbox, client, topic):
    person = make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    client.post(_renewal_link(app, session, settings, outbox, person))

    _, queued = _tick(session, settings, _at(REMINDER_DAY))

    assert queued == []


def test_without_an_answer_the_person_is_excluded_from_the_expiry_date_on(session, topic):
    person = make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic])
    expiry = date(2026, 5, 9)

    def reason(on):
        return audience.reason_for(person, SubscriptionStatus.SUBSCRIBED, on=on, years=5)

    assert reason(expiry - timedelta(days=1)) is None
    assert reason(expiry) == audience.WINDOW_EXPIRED


def test_a_late_click_after_expiry_still_renews(
    app, session, settings, outbox, client, clock, topic
):
    person = make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    path = _renewal_link(app, session, settings, outbox, person)
    clock.set(_at(date(2026, 5, 12)))

    page = client.get(path + "?lang=en")
    answer = client.post(path)

    assert "ended on May 9, 2026" in page.get_data(as_text=True)
    assert answer.status_code == 200
    session.expire_all()
    assert person.window_anchor == date(2026, 5, 12)


def test_someone_who_objected_cannot_renew_through_an_old_link(
    app, session, settings, outbox, client, clock, topic
):
    person = make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    path = _renewal_link(app, session, settings, outbox, person)
    consent.object_to_all(
        session, person, channel="web", now=clock(), suppression_key=settings.suppression_key
    )
    session.commit()

    page = client.get(path)
    answer = client.post(path)

    assert page.status_code == answer.status_code == 200
    assert "<form" not in answer.get_data(as_text=True)
    session.expire_all()
    assert person.status is ContactStatus.UNSUBSCRIBED
    assert person.window_anchor == DUE_ANCHOR


def test_bad_tokens_and_erased_contacts_get_the_same_404(
    app, session, settings, outbox, client, clock, topic
):

    person = make_contact(session, "ana@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    path = _renewal_link(app, session, settings, outbox, person)
    preferences_token = kit.signer(settings).preferences_token(person.public_id)
    gone = make_contact(session, "gone@example.org", anchor=DUE_ANCHOR, topics=[topic])
    gone_token = kit.signer(settings).renewal_token(gone.public_id)
    erasure.erase(session, gone, settings=settings, now=clock())
    session.commit()

    answers = [
        client.get(path[:-3]),
        client.post(path + "x"),
        client.get("/r/" + preferences_token),  # another purpose's token
        client.post("/r/" + gone_token),
        client.get("/r/" + "a" * 600),
    ]

    assert {a.status_code for a in answers} == {404}
    assert len({a.get_data() for a in answers}) == 1
    assert all(a.headers["Cache-Control"] == "no-store" for a in answers)


def test_two_schedulers_racing_record_and_queue_each_mail_once(session, settings, clock, topic):
    make_contact(session, "due@example.org", anchor=DUE_ANCHOR, topics=[topic])
    make_contact(session, "also@example.org", anchor=DUE_ANCHOR, topics=[topic])
    session.commit()
    found = repermission.due(
        session,
        today=TODAY,
        now=clock(),
        years=5,
        request_days=60,
        reminder_days=14,
        suppression_key=settings.suppression_key,
    )

    first = repermission.record_sent(session, found, now=clock())
    second = repermission.record_sent(session, found, now=clock())  # the other scheduler
    session.commit()

    assert (len(first), second) == (2, [])
    assert session.scalar(select(func.count()).select_from(RepermissionMail)) == 2
