"""Public sign-up: one answer for every address, mail only where due, the confirming step."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import pytest
from sqlalchemy import func, select

from prefsvc.consent import suppression
from prefsvc.errors import InvalidInput, InvalidToken, Suppressed
from prefsvc.mail import notice_kinds
from prefsvc.models import (
    Basis,
    ConsentEvent,
    Contact,
    ContactStatus,
    EventKind,
    OutboxJob,
    SignupRequest,
    SubscriptionStatus,
    SuppressionReason,
)
from prefsvc.queue import scheduler
from prefsvc.recipient import signup
from tests.factories import make_contact, make_topic

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
VALID = timedelta(hours=48)


@pytest.fixture
def haven(session):
    topic = make_topic(
        session, slug="haven", names={"nl": "Haven", "fr": "Port", "en": "Port news"}
    )
    session.commit()
    return topic


def form(session, email: str, topic, **fields) -> signup.Signup:
    values = {
        "email": email,
        "first_name": "Lea",
        "language": "fr",
        "topics": [topic.slug],
        "consent": "yes",
        "consent_version": signup.CONSENT_VERSION,
    }
    values.update(fields)
    return signup.parse(session, **values)


def ask(session, settings, email: str, topic, now: datetime = NOW) -> SignupRequest | None:
    held = signup.request(
        session,
        form(session, email, topic),
        now=now,
        valid=VALID,
        suppression_key=settings.suppression_key,
    )
    session.commit()
    return held


class HeldNotice(NamedTuple):
    kind: str
    contact_id: int | None
    params: dict


def held_notices(session) -> list[HeldNotice]:
    """The service mails waiting in the job outbox, oldest first."""
    jobs = session.scalars(select(OutboxJob).order_by(OutboxJob.id))
    return [HeldNotice(*job.args) for job in jobs if job.actor == "send_notice"]


def test_a_new_address_gets_a_request_and_a_held_confirmation_mail(session, settings, haven):
    held = ask(session, settings, " Lea@Example.ORG ", haven)
    assert held.email == "lea@example.org"
    assert held.expires_at == NOW + VALID
    [notice] = held_notices(session)
    assert (notice.kind, notice.contact_id, notice.params) == (
        signup.KIND,
        None,
        {"request": held.id},
    )
    assert session.scalar(select(func.count()).select_from(Contact)) == 0  # nothing subscribed


@pytest.mark.parametrize(
    "state",
    ["suppressed", "erased", "complained", "objected", "bounced"],
)
def test_addresses_that_must_not_be_mailed_get_no_mail(session, settings, haven, state):
    email = "kept@example.org"
    if state == "suppressed":
        suppression.add(session, settings.suppression_key, email, SuppressionReason.OBJECTION)
    elif state == "erased":
        suppression.add(session, settings.suppression_key, email, SuppressionReason.ERASURE)
    elif state == "complained":
        make_contact(session, email, complained_at=NOW)
    elif state == "objected":
        make_contact(session, email, status=ContactStatus.UNSUBSCRIBED)
    else:
        make_contact(session, email, bounced_at=NOW)
    session.commit()
    assert ask(session, settings, email, haven) is None
    assert held_notices(session) == []
    assert session.scalar(select(func.count()).select_from(SignupRequest)) == 0


def test_a_known_contact_gets_the_confirmation_mail_too(session, settings, haven):
    make_contact(session, "ana@example.org")
    session.commit()
    assert ask(session, settings, "ana@example.org", haven) is not None
    assert len(held_notices(session)) == 1


@pytest.mark.all_databases
def test_a_new_request_replaces_the_older_one(session, settings, haven):
    first = ask(session, settings, "lea@example.org", haven)
    first_token = signup.confirm_token(settings.secret_keys, first, now=NOW)
    ask(session, settings, "lea@example.org", haven, now=NOW + timedelta(minutes=5))
    assert session.scalar(select(func.count()).select_from(SignupRequest)) == 1
    with pytest.raises(InvalidToken):
        signup.pending(session, settings.secret_keys, first_token, now=NOW)


def test_the_confirmation_mail_is_in_the_persons_language_and_names_the_topics(
    session, settings, haven, outbox
):
    held = ask(session, settings, "lea@example.org", haven)
    [notice] = held_notices(session)
    notice_kinds.deliver(
        session, settings, kind=notice.kind, contact_id=None, params=notice.params, now=NOW
    )
    [mail] = outbox()
    assert mail["To"] == "lea@example.org"
    assert mail["Subject"] == "Confirmez votre inscription"
    body = mail.get_content()
    assert "Bonjour Lea," in body and "- Port\r\n" in body
    token = signup.confirm_token(settings.secret_keys, held, now=NOW)
    assert f"https://news.example.org/s/confirm/{token}" in body
    assert "List-Unsubscribe" not in mail  # transactional


@pytest.mark.all_databases
def test_confirming_subscribes_with_consent_in_the_ledger_and_moves_the_anchor(
    session, settings, haven
):
    held = ask(session, settings, "lea@example.org", haven)
    token = signup.confirm_token(settings.secret_keys, held, now=NOW)
    later = NOW + timedelta(hours=3)
    found = signup.pending(session, settings.secret_keys, token, now=later)
    contact = signup.confirm(
        session,
        found,
        now=later,
        today=date(2026, 3, 10),
        suppression_key=settings.suppression_key,
    )
    session.commit()
    assert (contact.email, contact.first_name, contact.language.value) == (
        "lea@example.org",
        "Lea",
        "fr",
    )
    assert contact.basis is Basis.CONSENT and contact.window_anchor == date(2026, 3, 10)
    assert [s.status for s in contact.subscriptions] == [SubscriptionStatus.SUBSCRIBED]
    [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact.id))
    assert (event.kind, event.channel, event.topic_id) == (EventKind.SUBSCRIBED, "signup", haven.id)
    assert event.occurred_at == later
    assert event.detail == {
        "basis": "consent",
        "consent_version": signup.CONSENT_VERSION,
        "requested_at": NOW.isoformat(),
    }
    assert session.scalar(select(func.count()).select_from(SignupRequest)) == 0
    with pytest.raises(InvalidToken):  # the link has done its work
        signup.pending(session, settings.secret_keys, token, now=later)


def test_a_known_contact_confirming_keeps_its_data_and_renews_a_topic_it_had(
    session, settings, haven
):
    ana = make_contact(session, "ana@example.org", topics=[haven], organisation="Haven NV")
    session.commit()
    held = ask(session, settings, "ana@example.org", haven)
    contact = signup.confirm(
        session, held, now=NOW, today=date(2026, 3, 10), suppression_key=settings.suppression_key
    )
    assert contact.id == ana.id and contact.organisation == "Haven NV"
    assert contact.window_anchor == date(2026, 3, 10)
    [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == ana.id))
    assert event.kind is EventKind.RENEWED and event.detail["basis"] == "consent"


def test_an_address_suppressed_after_the_request_is_not_subscribed(session, settings, haven):
    held = ask(session, settings, "lea@example.org", haven)
    suppression.add(
        session, settings.suppression_key, "lea@example.org", SuppressionReason.COMPLAINT
    )
    with pytest.raises(Suppressed):
        signup.confirm(
            session,
            held,
            now=NOW,
            today=date(2026, 3, 10),
            suppression_key=settings.suppression_key,
        )
    assert session.scalar(select(func.count()).select_from(Contact)) == 0


@pytest.mark.all_databases
def test_a_link_expires_and_its_request_is_deleted_by_the_scheduler(session, settings, haven):
    held = ask(session, settings, "lea@example.org", haven)
    token = signup.confirm_token(settings.secret_keys, held, now=NOW)
    assert signup.pending(
        session, settings.secret_keys, token, now=NOW + VALID - timedelta(seconds=1)
    )
    with pytest.raises(InvalidToken):
        signup.pending(session, settings.secret_keys, token, now=NOW + VALID)
    report = scheduler.tick(session, settings, now=NOW + VALID)
    assert report.signup_requests_deleted == 1
    assert session.scalar(select(func.count()).select_from(SignupRequest)) == 0


def test_an_expired_request_gets_no_mail_from_a_late_worker(session, settings, haven):
    held = ask(session, settings, "lea@example.org", haven)
    assert signup.build(session, settings, {"request": held.id}, now=NOW + VALID) is None


def test_a_forged_or_foreign_confirmation_token_is_refused(session, settings, haven):
    ask(session, settings, "lea@example.org", haven)
    for token in ("", "x", "a" * 500, signup.form_token(settings.secret_keys, now=NOW)):
        with pytest.raises(InvalidToken):
            signup.pending(session, settings.secret_keys, token, now=NOW)


def test_the_form_token_refuses_a_bot_that_is_too_fast_and_a_form_too_old(settings):
    keys = settings.secret_keys
    token = signup.form_token(keys, now=NOW)
    with pytest.raises(signup.FormRefused):
        signup.check_form_token(keys, token, now=NOW + timedelta(seconds=1))
    assert signup.check_form_token(keys, token, now=NOW + timedelta(seconds=5)) == (
        signup.CONSENT_VERSION
    )
    with pytest.raises(signup.FormRefused):
        signup.check_form_token(keys, token, now=NOW + signup.FORM_MAX_AGE + timedelta(seconds=1))
    for forged in (
        "",
        "nonsense",
        token[:-2] + "xx",
        signup.form_token(("other-key-0123456789",), now=NOW),
    ):
        with pytest.raises(signup.FormRefused):
            signup.check_form_token(keys, forged, now=NOW + timedelta(seconds=5))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({"email": None}, "email"),
        ({"language": "de"}, "language"),
        ({"topics": []}, "topics"),
        ({"topics": ["nope"]}, "topics"),
        ({"topics": {"a": 1}}, "topics"),
        ({"consent": None}, "consent"),
        ({"first_name": "x" * 201}, "first_name"),
        ({"first_name": ["Lea"]}, "first_name"),
    ],
)
def test_each_bad_field_is_named(session, haven, fields, field):
    with pytest.raises(InvalidInput) as raised:
        form(session, fields.pop("email", "lea@example.org"), haven, **fields)
    assert raised.value.field == field
