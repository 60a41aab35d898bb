"""The send path: every subscriber gets the campaign once, through every broker and transport."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from prefsvc import create_app
from prefsvc.campaigns import campaigns, delivery
from prefsvc.consent import changes as consent
from prefsvc.extensions import db
from prefsvc.mail import kit
from prefsvc.models import CampaignStatus, Delivery, DeliveryStatus
from tests.factories import DEFAULT_HTML, make_campaign, make_contact, make_topic

TODAY = date(2026, 3, 10)


def _audience(session, n: int, *, languages=("nl", "fr", "en")):
    topic = make_topic(session, slug="nieuwe-opleidingen", name="Nieuwe opleidingen")
    people = [
        make_contact(
            session,
            f"person{i}@example.org",
            language=languages[i % len(languages)],
            topics=[topic],
        )
        for i in range(n)
    ]
    campaign = make_campaign(session, topic)
    session.commit()
    return topic, people, campaign


@pytest.mark.all_brokers
def test_every_subscriber_gets_the_campaign_exactly_once(session, run_campaign, outbox):
    _, people, campaign = _audience(session, 25)

    finished = run_campaign(campaign.id)

    assert finished.status is CampaignStatus.SENT
    recipients = sorted(m["To"] for m in outbox())
    assert recipients == sorted(p.email for p in people)
    report = campaigns.stats(session, finished, today=date(2026, 3, 10), years=5)
    assert (report["audience"], report["sent"], report["failed"]) == (25, 25, 0)


@pytest.mark.all_databases
def test_delivered_mail_carries_one_click_headers_and_footer_links(session, run_campaign, outbox):
    _, people, campaign = _audience(session, 3)
    run_campaign(campaign.id)

    for message in outbox():
        assert message.get_content_type() == "multipart/alternative"
        plain, html = message.iter_parts()
        assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
        unsubscribe = message["List-Unsubscribe"]
        assert unsubscribe.startswith("<https://news.example.org/u/") and unsubscribe.endswith(">")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "nieuwe-opleidingen.news.example.org" in message["List-Id"]
        url = unsubscribe[1:-1]
        assert url in plain.get_content()
        assert url in html.get_content()
        assert "https://news.example.org/p/" in plain.get_content()
        assert "@" not in url


def test_contact_who_unsubscribes_after_fan_out_is_not_mailed(
    app, session, clock, run_campaign, outbox
):
    topic, people, campaign = _audience(session, 4)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    leaver = people[1]
    consent.unsubscribe(
        session, leaver, topic, channel="one-click", now=clock(), today=date(2026, 3, 10)
    )
    session.commit()
    from prefsvc.queue import broker

    for batch in campaigns.queued_batches(session, campaign.id, 100):
        broker.queue().send_batch(batch)
    finished = run_campaign(campaign.id, launch=False)

    assert leaver.email not in [m["To"] for m in outbox()]
    report = campaigns.stats(session, finished, today=date(2026, 3, 10), years=5)
    assert report["sent"] == 3
    assert report["excluded"] == {"unsubscribed": 1}


def _change_after_fan_out(change: str, session, settings, contact, clock) -> None:
    from prefsvc.consent import suppression
    from prefsvc.models import SuppressionReason

    if change == "suppressed":  # e.g. a complaint arrived; the contact row is untouched
        suppression.add(session, settings.suppression_key, contact.email, SuppressionReason.BOUNCE)
    elif change == "paused":
        contact.paused_until = date(2026, 6, 1)
    elif change == "window_expired":
        contact.window_anchor = date(2021, 3, 11)  # window ends at midnight, before the send
        clock.advance(days=1)


@pytest.mark.all_databases
@pytest.mark.parametrize("change", ["suppressed", "paused", "window_expired"])
def test_a_change_after_fan_out_keeps_that_contact_out_of_their_batch(
    session, settings, clock, outbox, change
):
    _, people, campaign = _audience(session, 4)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    _change_after_fan_out(change, session, settings, people[2], clock)
    session.commit()
    ids = list(session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id)))

    result = delivery.deliver(
        session, ids, settings=settings, now=clock, transport=kit.transport(settings)
    )

    assert people[2].email not in [m["To"] for m in outbox()]
    assert (result.sent, result.excluded) == (3, {change: 1})
    report = campaigns.stats(session, campaigns.get(session, campaign.id), today=TODAY, years=5)
    assert (report["status"], report["sent"], report["excluded"]) == ("sent", 3, {change: 1})


# --- SMTP -------------------------------------------------------------------------------


@pytest.fixture
def smtp_app(settings, clock, smtp_server):
    app = create_app(settings.with_(mail_url=smtp_server.url), clock=clock)
    with app.app_context():
        db.create_all()
        yield app
        from prefsvc.queue import broker

        broker.queue().stop()
        kit.close_thread_resources()
        db.session.remove()
        db.engine.dispose()


def _launch_and_wait(campaign_id: int, timeout: float = 30.0):
    import time

    from prefsvc.models import Campaign
    from prefsvc.queue.launcher import launch

    launch(campaign_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        campaign = db.session.get(Campaign, campaign_id)
        db.session.commit()
        if campaign.status is not CampaignStatus.SENDING:
            return campaign
        time.sleep(0.05)
    raise AssertionError("campaign did not finish")


def test_campaign_is_delivered_into_a_real_smtp_server(smtp_app, smtp_server):
    session = db.session
    _, people, campaign = _audience(session, 6)

    _launch_and_wait(campaign.id)

    received = smtp_server.received
    assert sorted(r.recipients[0] for r in received) == sorted(p.email for p in people)
    assert all(r.sender == "news@example.org" for r in received)
    message = received[0].message
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_temporary_smtp_failure_is_retried_and_then_delivered(smtp_app, smtp_server):
    session = db.session
    _, people, campaign = _audience(session, 3)
    smtp_server.script(people[0].email, "451 4.7.1 Greylisted, try again later")

    finished = _launch_and_wait(campaign.id, timeout=60)

    assert finished.status is CampaignStatus.SENT
    assert sorted(r.recipients[0] for r in smtp_server.received) == sorted(p.email for p in people)
    delivery = session.scalar(select(Delivery).where(Delivery.contact_id == people[0].id))
    assert delivery.status is DeliveryStatus.SENT
    assert delivery.attempts == 2


def test_permanent_smtp_failure_is_kept_and_not_retried(smtp_app, smtp_server):
    session = db.session
    _, people, campaign = _audience(session, 3)
    smtp_server.script(people[2].email, "550 5.1.1 No such user here")

    finished = _launch_and_wait(campaign.id)

    delivery = session.scalar(select(Delivery).where(Delivery.contact_id == people[2].id))
    assert (delivery.status, delivery.smtp_code, delivery.attempts) == (
        DeliveryStatus.FAILED,
        550,
        1,
    )
    assert "No such user" in delivery.smtp_text
    report = campaigns.stats(session, finished, today=date(2026, 3, 10), years=5)
    assert (report["sent"], report["failed"]) == (2, 1)
    assert len(smtp_server.received) == 2


# --- internationalised addresses (RFC 6531) ------------------------------------------------

IDN_DOMAIN = "jan@exämple.be"  # as email-validator keeps it; in IDNA form jan@xn--exmple-cua.be
UTF8_LOCAL_PART = "zoë@example.org"  # needs SMTPUTF8 all the way


def _audience_led_by(session, address: str, n: int = 3):
    """A campaign to ``address`` (first in the batch) and ``n`` people with ASCII addresses."""
    topic = make_topic(session, slug="nieuwe-opleidingen", name="Nieuwe opleidingen")
    first = make_contact(session, address, topics=[topic])
    people = [make_contact(session, f"person{i}@example.org", topics=[topic]) for i in range(n)]
    campaign = make_campaign(session, topic)
    session.commit()
    return first, people, campaign


def test_contacts_with_international_addresses_get_the_campaign_in_the_maildir_outbox(
    session, run_campaign, outbox
):
    zoe, people, campaign = _audience_led_by(session, UTF8_LOCAL_PART)
    make_contact(session, IDN_DOMAIN, topics=[campaign.topic])
    session.commit()

    finished = run_campaign(campaign.id)

    assert finished.status is CampaignStatus.SENT
    recipients = sorted(m["To"] for m in outbox())
    assert recipients == sorted(
        [p.email for p in people] + ["zoë@example.org", "jan@xn--exmple-cua.be"]
    )
    report = campaigns.stats(session, finished, today=TODAY, years=5)
    assert (report["sent"], report["failed"]) == (5, 0)


@pytest.mark.parametrize(
    "smtp_server", [{"smtputf8": False}, {"smtputf8": True}], indirect=True, ids=["", "smtputf8"]
)
def test_contact_with_an_idn_domain_gets_the_campaign(smtp_app, smtp_server):
    session = db.session
    jan, people, campaign = _audience_led_by(session, IDN_DOMAIN)

    finished = _launch_and_wait(campaign.id)

    assert finished.status is CampaignStatus.SENT
    received = {r.recipients[0]: r for r in smtp_server.received}
    assert sorted(received) == sorted([p.email for p in people] + ["jan@xn--exmple-cua.be"])
    assert received["jan@xn--exmple-cua.be"].message["To"] == "jan@xn--exmple-cua.be"
    delivery = session.scalar(select(Delivery).where(Delivery.contact_id == jan.id))
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)


@pytest.mark.parametrize("smtp_server", [{"smtputf8": True}], indirect=True, ids=["smtputf8"])
def test_utf8_local_part_gets_the_campaign_where_the_server_offers_smtputf8(smtp_app, smtp_server):
    session = db.session
    zoe, people, campaign = _audience_led_by(session, UTF8_LOCAL_PART)

    finished = _launch_and_wait(campaign.id)

    assert finished.status is CampaignStatus.SENT
    received = {r.recipients[0]: r for r in smtp_server.received}
    assert sorted(received) == sorted([p.email for p in people] + ["zoë@example.org"])
    assert "SMTPUTF8" in received["zoë@example.org"].mail_options
    assert received["zoë@example.org"].message["To"] == "zoë@example.org"
    assert "SMTPUTF8" not in received[people[0].email].mail_options
    delivery = session.scalar(select(Delivery).where(Delivery.contact_id == zoe.id))
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)


def test_utf8_local_part_is_failed_alone_when_the_server_lacks_smtputf8(
    smtp_app, smtp_server, caplog
):
    import logging

    session = db.session
    zoe, people, campaign = _audience_led_by(session, UTF8_LOCAL_PART)

    with caplog.at_level(logging.DEBUG):
        finished = _launch_and_wait(campaign.id)

    assert finished.status is CampaignStatus.SENT
    assert sorted(r.recipients[0] for r in smtp_server.received) == sorted(p.email for p in people)
    delivery = session.scalar(select(Delivery).where(Delivery.contact_id == zoe.id))
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert delivery.smtp_code is None
    assert "does not offer SMTPUTF8" in delivery.smtp_text
    report = campaigns.stats(session, finished, today=TODAY, years=5)
    assert (report["sent"], report["failed"]) == (3, 1)
    ours = [r for r in caplog.records if r.name.startswith(("prefsvc", "dramatiq"))]
    logged = "\n".join(logging.Formatter("%(message)s").format(r) for r in ours)
    assert "batch done" in logged
    assert "Traceback" not in logged and "@" not in logged and "zo" not in logged


# --- rate limits --------------------------------------------------------------------------


class _RecordingTransport:
    """A transport that notes who was sent to, and when on the test's clock."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.sent: list[tuple[str, float]] = []

    def send(self, *, sender: str, recipients: list[str], message: bytes) -> None:
        self.sent.append((recipients[0], self.clock()))

    def close(self) -> None:
        pass


def test_rate_limits_hold_in_a_batch_and_held_back_deliveries_go_later(
    app, session, settings, clock
):
    from prefsvc.mail.rate_limits import LocalLimiter
    from tests.mail.test_rate_limits import FakeTime, most_in_any_second

    topic = make_topic(session)
    people = [
        make_contact(session, f"p{i}@gmail.com" if i % 2 else f"p{i}@d{i}.be", topics=[topic])
        for i in range(30)
    ]
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    seconds = FakeTime()
    limiter = LocalLimiter(per_second=4, domain_per_second=1, clock=seconds)
    transport = _RecordingTransport(seconds)
    other_worker = [limiter.reserve("gmail.com", max_wait=10) for _ in range(4)]
    assert all(slot.granted for slot in other_worker)  # gmail.com is busy for the next 4 s

    batch = list(session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id)))
    held_back = []
    while batch:
        result = delivery.deliver(
            session,
            batch,
            settings=settings,
            now=clock,
            transport=transport,
            rate_limiter=limiter,
            sleep=seconds.sleep,
        )
        held_back.append(len(result.deferred))
        batch = result.deferred
        seconds.sleep(result.defer_seconds)

    assert sorted(to for to, _ in transport.sent) == sorted(p.email for p in people)
    assert held_back[0] > 0  # the limits really bit
    assert most_in_any_second([t for _, t in transport.sent]) <= 4
    gmail = [t for to, t in transport.sent if to.endswith("@gmail.com")]
    assert min(gmail) >= 1_000.0 + 4 and most_in_any_second(gmail) <= 1
    assert set(session.scalars(select(Delivery.status))) == {DeliveryStatus.SENT}
    assert campaigns.get(session, campaign.id).status is CampaignStatus.SENT


@pytest.mark.parametrize("broker_kind", ["stub", "redis"])
def test_deliveries_held_back_by_a_rate_limit_are_queued_again_and_sent(
    app, session, settings, run_campaign, outbox, monkeypatch
):
    """A limited campaign still completes: held-back deliveries come back as new jobs (on
    Redis the buckets live in Redis), and nothing is failed or sent twice."""
    monkeypatch.setattr(delivery, "LONGEST_RATE_WAIT", 0.01)
    app.extensions["prefsvc.settings"] = settings.with_(domain_rate_limit=20.0)
    _, people, campaign = _audience(session, 12)

    finished = run_campaign(campaign.id)

    assert finished.status is CampaignStatus.SENT
    assert sorted(m["To"] for m in outbox()) == sorted(p.email for p in people)
    attempts = list(session.scalars(select(Delivery.attempts)))
    assert max(attempts) > 1  # claimed again after being held back
    assert set(session.scalars(select(Delivery.status))) == {DeliveryStatus.SENT}


def test_sending_logs_hold_no_addresses_or_tokens(smtp_app, smtp_server, caplog):
    """Worker logs name ids and counts; addresses, names and link tokens stay out of them."""
    import logging

    session = db.session
    _, people, campaign = _audience(session, 4)
    smtp_server.script(people[1].email, "451 4.7.1 <person1@example.org> greylisted")
    smtp_server.script(people[3].email, "550 5.1.1 <person3@example.org>: no such user")

    with caplog.at_level(logging.DEBUG):
        finished = _launch_and_wait(campaign.id, timeout=60)

    assert finished.status is CampaignStatus.SENT
    ours = [r for r in caplog.records if r.name.startswith(("prefsvc", "dramatiq"))]
    formatter = logging.Formatter("%(message)s")
    logged = "\n".join(formatter.format(r) for r in ours)  # with any traceback
    assert "batch done" in logged  # the logs did say something
    assert "@" not in logged and "person" not in logged
    assert "/u/" not in logged and "/p/" not in logged


def test_a_message_that_cannot_be_rendered_for_one_contact_fails_alone(
    session, run_campaign, outbox, caplog
):
    """A template that breaks on one person's data (no first name here) fails that delivery only."""
    topic = make_topic(session, slug="nieuws", name="Nieuws")
    people = [make_contact(session, f"p{i}@example.org", topics=[topic]) for i in range(3)]
    nameless = make_contact(session, "nameless@example.org", topics=[topic], first_name=None)
    campaign = make_campaign(
        session, topic, html="<p>Beste {{ contact.first_name.upper() }},</p>", subject="Nieuws"
    )
    session.commit()

    finished = run_campaign(campaign.id, timeout=20)

    assert finished.status is CampaignStatus.SENT
    assert sorted(m["To"] for m in outbox()) == sorted(p.email for p in people)
    failed = session.scalar(select(Delivery).where(Delivery.contact_id == nameless.id))
    assert (failed.status, failed.reason, failed.smtp_code) == (
        DeliveryStatus.FAILED,
        "unrenderable",
        None,
    )
    assert "UndefinedError" in failed.smtp_text
    assert "nameless@" not in caplog.text


@pytest.mark.all_databases
def test_a_template_that_bombs_on_one_contact_fails_that_delivery_alone_as_unrenderable(
    session, run_campaign, outbox
):
    """The sample passed, but one person's data sets the bomb off: the worker stops it."""
    topic = make_topic(session, slug="nieuws", name="Nieuws")
    people = [make_contact(session, f"p{i}@example.org", topics=[topic]) for i in range(2)]
    bomber = make_contact(session, "b@example.org", topics=[topic], first_name="Bomb")
    html = "<p>{% if contact.first_name == 'Bomb' %}{{ 'a' * 300000000 }}{% endif %}Hi</p>"
    campaign = make_campaign(session, topic, html=html, subject="Nieuws")
    session.commit()

    finished = run_campaign(campaign.id, timeout=20)

    assert finished.status is CampaignStatus.SENT
    assert sorted(m["To"] for m in outbox()) == sorted(p.email for p in people)
    failed = session.scalar(select(Delivery).where(Delivery.contact_id == bomber.id))
    assert (failed.status, failed.reason) == (DeliveryStatus.FAILED, "unrenderable")
    assert "TemplateTooCostly" in failed.smtp_text


TOPIC_NAMES = {"nl": "Nieuwe opleidingen", "fr": "Nouvelles formations", "en": "New trainings"}
FOOTER_WORDS = {
    "nl": "op de mailinglijst “{}”",
    "fr": "sur la liste de diffusion «\xa0{}\xa0»",
    "en": "on the mailing list “{}”",
}


def _footer_of(message) -> str:
    plain, _html = message.iter_parts()
    return plain.get_content().replace("\r\n", "\n").split("\n-- \n", 1)[1]


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
@pytest.mark.parametrize("written_in", [("nl",), ("nl", "fr", "en")], ids=["nl-only", "all"])
def test_footer_and_list_id_name_the_topic_in_the_readers_language(
    session, run_campaign, outbox, language, written_in
):
    topic = make_topic(session, slug="nieuwe-opleidingen", names=TOPIC_NAMES)
    reader = make_contact(session, "reader@example.org", language=language, topics=[topic])
    variants = {lang: (f"Subject {lang}", DEFAULT_HTML, None) for lang in written_in}
    campaign = make_campaign(session, topic, variants=variants)
    session.commit()

    run_campaign(campaign.id)

    (message,) = outbox()
    assert message["To"] == reader.email
    footer = _footer_of(message)
    assert FOOTER_WORDS[language].format(TOPIC_NAMES[language]) in footer
    others = {TOPIC_NAMES[lang] for lang in TOPIC_NAMES if lang != language}
    assert not any(name in footer for name in others)
    _plain, html = message.iter_parts()
    assert TOPIC_NAMES[language] in html.get_content().rsplit("<div", 1)[1]
    assert message["List-Id"] == f"{TOPIC_NAMES[language]} <nieuwe-opleidingen.news.example.org>"
