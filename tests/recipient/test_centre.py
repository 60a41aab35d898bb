"""The preference centre's domain: exact topics and language, pause and resume, the history."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from prefsvc.consent import changes as consent
from prefsvc.consent import suppression
from prefsvc.errors import InvalidInput, Suppressed
from prefsvc.models import (
    ConsentEvent,
    EventKind,
    Language,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
)
from prefsvc.recipient import centre
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.all_databases
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


@pytest.fixture
def topics(session):
    """Three topics; Ana receives the first two."""
    return [make_topic(session, slug=s, name=s.title()) for s in ("haven", "kraan", "vca")]


@pytest.fixture
def ana(session, topics):
    contact = make_contact(session, "ana@example.org", topics=topics[:2], anchor=date(2026, 1, 1))
    session.commit()
    return contact


def _subscribed(session, contact) -> set[int]:
    session.expire_all()
    return set(
        session.scalars(
            select(Subscription.topic_id).where(
                Subscription.contact_id == contact.id,
                Subscription.status == SubscriptionStatus.SUBSCRIBED,
            )
        )
    )


def _events(session, contact) -> list[tuple[EventKind, str, int | None]]:
    rows = session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id == contact.id).order_by(ConsentEvent.seq)
    )
    return [(e.kind, e.channel, e.topic_id) for e in rows]


@pytest.fixture
def save(session, settings):
    """Save the preference-centre form for a contact, as the page does, on ``TODAY``."""

    def save(contact, topic_ids, language="nl"):
        return centre.save(
            session,
            contact,
            topic_ids=topic_ids,
            language=language,
            suppression_key=settings.suppression_key,
            now=NOW,
            today=TODAY,
        )

    return save


def test_save_keeps_exactly_the_chosen_topics_and_records_each_change(session, save, ana, topics):
    haven, kraan, vca = topics
    changes = save(ana, [kraan.id, vca.id], language="fr")
    session.commit()

    assert changes.subscribed == [vca] and changes.unsubscribed == [haven]
    assert changes.language is Language.FR and changes
    assert _subscribed(session, ana) == {kraan.id, vca.id}
    assert ana.language is Language.FR
    assert ana.window_anchor == TODAY  # the person's own choice moves the anchor
    assert _events(session, ana) == [
        (EventKind.UNSUBSCRIBED, "preference-centre", haven.id),
        (EventKind.SUBSCRIBED, "preference-centre", vca.id),
        (EventKind.PREFERENCES, "preference-centre", None),
    ]


def test_saving_the_form_unchanged_changes_and_records_nothing(session, save, ana, topics):
    changes = save(ana, [topics[0].id, topics[1].id])
    session.commit()

    assert not changes
    assert _events(session, ana) == []
    assert ana.window_anchor == date(2026, 1, 1)


@pytest.mark.parametrize(
    ("field", "topic_ids", "language"), [("language", [], "de"), ("topics", [999_999], "nl")]
)
def test_save_refuses_a_language_or_topic_we_do_not_have(
    session, save, ana, field, topic_ids, language
):
    with pytest.raises(InvalidInput) as refused:
        save(ana, topic_ids, language=language)
    assert refused.value.field == field
    session.rollback()
    assert len(_subscribed(session, ana)) == 2


def test_after_an_objection_no_topic_is_added_back_but_one_may_still_go(
    session, save, settings, ana, topics
):
    haven, kraan, vca = topics
    consent.object_to_all(
        session, ana, channel="one-click", now=NOW, suppression_key=settings.suppression_key
    )
    session.commit()
    with pytest.raises(Suppressed):
        save(ana, [vca.id])
    session.rollback()
    assert _subscribed(session, ana) == set()
    assert [kind for kind, _, _ in _events(session, ana)] == [EventKind.OBJECTION]


def test_a_suppressed_address_cannot_take_a_topic_back(session, save, settings, ana, topics):
    suppression.add(session, settings.suppression_key, "ana@example.org", SuppressionReason.BOUNCE)
    session.commit()
    with pytest.raises(Suppressed):
        save(ana, [topics[0].id, topics[1].id, topics[2].id])
    changes = save(ana, [topics[0].id])  # leaving a topic is always allowed
    assert changes.unsubscribed == [topics[1]]


def test_pause_stops_mail_until_the_same_day_months_later_and_resume_ends_it(session, ana):
    until = centre.pause(session, ana, 3, now=NOW, today=date(2026, 11, 30))
    assert until == date(2027, 2, 28)  # no 30 February: that month's last day
    assert centre.is_paused(ana, date(2027, 2, 27)) and not centre.is_paused(ana, until)
    assert ana.window_anchor == date(2026, 11, 30)

    assert centre.resume(session, ana, now=NOW, today=date(2026, 12, 1)) is True
    assert ana.paused_until is None
    assert centre.resume(session, ana, now=NOW, today=date(2026, 12, 1)) is False
    session.commit()
    details = [e.detail for e in session.scalars(select(ConsentEvent).order_by(ConsentEvent.seq))]
    assert details == [{"months": 3, "until": "2027-02-28"}, {"until": None}]


def test_only_one_three_or_six_months_can_be_chosen(session, ana):
    with pytest.raises(InvalidInput):
        centre.pause(session, ana, 2, now=NOW, today=TODAY)
    assert ana.paused_until is None


def test_history_lists_the_newest_event_first_with_its_topic_name(session, ana, topics):
    consent.unsubscribe(session, ana, topics[0], channel="one-click", now=NOW, today=TODAY)
    centre.pause(session, ana, 1, now=NOW, today=TODAY)
    session.commit()

    history = centre.history(session, ana)
    assert [(event.kind, name) for event, name in history] == [
        (EventKind.PAUSED, None),
        (EventKind.UNSUBSCRIBED, "Haven"),
    ]


def test_topic_choices_list_every_topic_by_name_with_what_the_contact_receives(
    session, ana, topics
):
    choices = centre.topic_choices(session, ana)
    assert [(c.topic.name, c.subscribed) for c in choices] == [
        ("Haven", True),
        ("Kraan", True),
        ("Vca", False),
    ]
