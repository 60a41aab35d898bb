"""Mail that comes back, end to end: a campaign goes out over SMTP with VERP, real reports come
back over a real LMTP conversation with ``prefsvc inbound serve``'s server (or through
``prefsvc inbound process``), and the next campaign leaves the right people out.
"""

from __future__ import annotations

import json
import smtplib
import socket
from datetime import date, timedelta

import pytest
from sqlalchemy import event, func, select

from prefsvc.campaigns import audience, campaigns
from prefsvc.commands import inbound as inbound_command
from prefsvc.inbound import intake, policy, verp
from prefsvc.inbound.verp import BOUNCES, DELIVERY, NOTICE, UNSUBSCRIBE, Token
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    EventKind,
    InboundMessage,
    Subscription,
    SubscriptionStatus,
)
from prefsvc.privacy import retention
from prefsvc.queue import broker
from tests.factories import make_campaign, make_contact, make_sent_deliveries, make_topic
from tests.inbound.samples import BOUNCE_DOMAIN, CORPUS, retoken

TODAY = date(2026, 3, 10)


@pytest.fixture
def settings(settings, smtp_server):
    return settings.with_(mail_url=smtp_server.url, bounce_domain=BOUNCE_DOMAIN)


@pytest.fixture
def lmtp(app):
    """``prefsvc inbound serve``'s server on a free port; yields a connected LMTP client."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = inbound_command.server(app, host="127.0.0.1", port=port)
    controller.start()
    client = smtplib.LMTP("127.0.0.1", port)
    try:
        yield client
    finally:
        client.close()
        controller.stop()
        controller.handler.close()


def send_lmtp(client: smtplib.LMTP, raw: bytes, *recipients: str) -> list[tuple[int, bytes]]:
    """One LMTP transaction; return the reply given for each recipient (RFC 2033)."""
    client.ehlo_or_helo_if_needed()
    client.mail("")
    for recipient in recipients:
        code, _ = client.rcpt(recipient)
        assert code == 250
    replies = [client.data(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))]
    replies += [client.getreply() for _ in recipients[1:]]
    return replies


def _people(session):
    topic = make_topic(session, "haven", "Haven & Logistiek")
    names = ("dead", "spam", "unsub", "away", "blocked", "full", "fine")
    people = {n: make_contact(session, f"{n}@example.net", topics=[topic]) for n in names}
    campaign = make_campaign(session, topic)
    session.commit()
    return topic, people, campaign


def _deliveries(session, campaign_id: int) -> dict[int, int]:
    rows = session.execute(
        select(Delivery.contact_id, Delivery.id).where(Delivery.campaign_id == campaign_id)
    ).all()
    return dict(rows)


@pytest.mark.all_databases
def test_reports_over_lmtp_act_once_and_keep_people_out_of_the_next_campaign(
    app, session, settings, run_campaign, smtp_server, lmtp
):
    topic, people, first = _people(session)
    run_campaign(first.id)
    by_contact = _deliveries(session, first.id)
    codec = verp.codec(settings.secret_keys)
    sent = {m.recipients[0]: m for m in smtp_server.received}
    ident = {name: by_contact[contact.id] for name, contact in people.items()}
    session.commit()  # the LMTP server writes from its own threads

    def bounce_to(name: str) -> str:
        return sent[people[name].email].sender  # the envelope sender it went out with

    # A hard bounce, twice (an MTA retrying after a lost reply): counted once.
    dsn = retoken("postfix-5.1.1.eml", codec, {101: ident["dead"]})
    assert send_lmtp(lmtp, dsn, bounce_to("dead"))[0][0] == 250
    [(code, text)] = send_lmtp(lmtp, dsn, bounce_to("dead"))
    assert (code, text) == (250, b"2.0.0 Ok: duplicate")
    # A complaint sent to the plain bounce mailbox: identified by the returned headers.
    arf = retoken("yahoo-arf-abuse.eml", codec, {101: ident["spam"]})
    assert send_lmtp(lmtp, arf, f"bounces@{BOUNCE_DOMAIN}")[0] == (250, b"2.0.0 Ok: complained")
    # A mail to the List-Unsubscribe mailto:.
    mailto = sent[people["unsub"].email].message["List-Unsubscribe"].split("mailto:")[1][:-1]
    unsubscribe = retoken("unsubscribe-mailto.eml", codec, {105: ident["unsub"]})
    assert send_lmtp(lmtp, unsubscribe, mailto)[0] == (250, b"2.0.0 Ok: unsubscribed")
    # An out-of-office, one transaction for two recipients: one reply each.
    ooo = (CORPUS / "ooo-auto-submitted.eml").read_bytes()
    replies = send_lmtp(lmtp, ooo, bounce_to("away"), bounce_to("fine"))
    assert replies == [(250, b"2.0.0 Ok: ignored")] * 2
    # A blocklist refusal and a full mailbox.
    blocked = retoken("blocklist-5.7.1.eml", codec, {106: ident["blocked"]})
    assert send_lmtp(lmtp, blocked, bounce_to("blocked"))[0] == (250, b"2.0.0 Ok: policy_refusal")
    full = retoken("gmail-5.2.2-full.eml", codec, {104: ident["full"]})
    assert send_lmtp(lmtp, full, bounce_to("full"))[0] == (250, b"2.0.0 Ok: scored")

    session.expire_all()
    dead, spam, unsub, away, blocked_, full_ = (
        session.get(Contact, people[n].id)
        for n in ("dead", "spam", "unsub", "away", "blocked", "full")
    )
    assert dead.bounced_at is not None and dead.bounce_code == "5.1.1"
    assert "dead@example.net" not in (dead.bounce_diagnostic or "")
    assert spam.complained_at is not None and spam.status is ContactStatus.UNSUBSCRIBED
    assert (full_.bounced_at, full_.bounce_score) == (None, 1)
    for untouched in (away, blocked_):
        assert (untouched.bounced_at, untouched.complained_at, untouched.bounce_score) == (
            None,
            None,
            0,
        )
        assert untouched.status is ContactStatus.ACTIVE
    unsub_subscription = session.scalar(
        select(Subscription.status).where(Subscription.contact_id == unsub.id)
    )
    assert unsub_subscription is SubscriptionStatus.UNSUBSCRIBED
    events = session.execute(
        select(ConsentEvent.contact_id, ConsentEvent.kind, ConsentEvent.channel).where(
            ConsentEvent.kind.in_([EventKind.OBJECTION, EventKind.UNSUBSCRIBED])
        )
    ).all()
    assert sorted(events) == sorted(
        [(spam.id, EventKind.OBJECTION, "complaint"), (unsub.id, EventKind.UNSUBSCRIBED, "mailto")]
    )
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 7
    session.commit()

    # The acknowledgement of the mailto: unsubscribe goes out; the complaint gets none.
    broker.queue().join(timeout_ms=10_000)
    notices = [m for m in smtp_server.received if m.message["Auto-Submitted"]]
    assert [m.recipients for m in notices] == [["unsub@example.net"]]
    assert codec.parse(notices[0].sender) == Token(BOUNCES, NOTICE, unsub.id)

    figures = campaigns.stats(session, first, today=TODAY, years=5)
    assert (
        figures["bounced"],
        figures["bounced_soft"],
        figures["complained"],
        figures["policy_refusals"],
    ) == (1, 1, 1, 1)

    second = make_campaign(session, topic)
    session.commit()
    count = audience.count(session, second, on=TODAY, years=5)
    assert count.excluded == {"bounced": 1, "complained": 1, "unsubscribed": 1}
    assert count.audience == 4
    before = len(smtp_server.received)
    run_campaign(second.id)
    excluded = dict(
        session.execute(
            select(Delivery.contact_id, Delivery.reason).where(
                Delivery.campaign_id == second.id, Delivery.status == DeliveryStatus.EXCLUDED
            )
        ).all()
    )
    assert excluded == {dead.id: "bounced", spam.id: "complained", unsub.id: "unsubscribed"}
    assert len(smtp_server.received) - before == 4


def test_lmtp_refuses_mailboxes_that_are_not_ours(lmtp):
    lmtp.ehlo_or_helo_if_needed()
    lmtp.mail("")
    assert lmtp.rcpt(f"postmaster@{BOUNCE_DOMAIN}")[0] == 550


@pytest.mark.all_databases
def test_a_refusal_at_smtp_time_feeds_the_same_rules(session, run_campaign, smtp_server):
    topic = make_topic(session)
    dead = make_contact(session, "dead@example.net", topics=[topic])
    listed = make_contact(session, "listed@example.net", topics=[topic])
    make_contact(session, "fine@example.net", topics=[topic])
    campaign = make_campaign(session, topic)
    session.commit()
    smtp_server.script("dead@example.net", "550 5.1.1 <dead@example.net>: User unknown")
    smtp_server.script("listed@example.net", "550 5.7.1 Client host blocked using Spamhaus")

    run_campaign(campaign.id)

    session.expire_all()
    assert session.get(Contact, dead.id).bounce_code == "5.1.1"
    assert session.get(Contact, listed.id).bounced_at is None
    figures = campaigns.stats(session, campaign, today=TODAY, years=5)
    assert (figures["failed"], figures["bounced"], figures["policy_refusals"]) == (2, 1, 1)


def test_campaign_goes_out_with_verp_sender_mailto_and_feedback_id(
    session, settings, run_campaign, smtp_server
):
    topic = make_topic(session, "haven")
    contact = make_contact(session, "ana@example.net", topics=[topic])
    campaign = make_campaign(session, topic)
    session.commit()
    run_campaign(campaign.id)

    [received] = smtp_server.received
    delivery_id = session.scalar(select(Delivery.id).where(Delivery.contact_id == contact.id))
    codec = verp.codec(settings.secret_keys)
    assert received.sender.endswith(f"@{BOUNCE_DOMAIN}") and len(received.sender) < 64 + 25
    assert codec.parse(received.sender) == Token(BOUNCES, DELIVERY, delivery_id)
    message = received.message
    https, mailto = message["List-Unsubscribe"].split(", ")
    assert https.startswith("<https://news.example.org/u/")
    assert codec.parse(mailto.removeprefix("<mailto:").removesuffix(">")) == Token(
        UNSUBSCRIBE, DELIVERY, delivery_id
    )
    assert message["Feedback-ID"] == f"{campaign.id}:haven:campaign:example.org"


def test_process_reads_a_file_or_stdin_and_counts_a_report_once(
    app, session, settings, runner, tmp_path
):
    topic = make_topic(session)
    contact = make_contact(session, "dead@example.net", topics=[topic])
    campaign = make_campaign(session, topic)
    delivery = Delivery(campaign_id=campaign.id, contact_id=contact.id, status=DeliveryStatus.SENT)
    session.add(delivery)
    session.commit()
    codec = verp.codec(settings.secret_keys)
    # Delivered-To names the recipient, as Postfix's pipe transport (flag D) writes it.
    raw = retoken("postfix-5.1.1.eml", codec, {101: delivery.id})
    path = tmp_path / "dsn.eml"
    path.write_bytes(raw)

    first = runner.invoke(args=["inbound", "process", str(path)])
    again = runner.invoke(args=["inbound", "process"], input=b"Delivered-To: x\n" + raw)
    empty = runner.invoke(args=["inbound", "process"], input=b"")

    assert (first.exit_code, first.stdout) == (0, "hard_bounce: bounced\n")
    assert (again.exit_code, again.stdout) == (0, "hard_bounce: duplicate\n")
    assert empty.exit_code == 1 and empty.stderr == "Error: empty message\n"
    stranger = runner.invoke(args=["inbound", "process"], input=b"Subject: hello\n\nhi\n")
    assert (stranger.exit_code, stranger.stdout) == (0, "unknown: ignored\n")
    session.expire_all()
    assert session.get(Contact, contact.id).bounced_at is not None
    shown = runner.invoke(args=["contacts", "show", "dead@example.net"])
    assert "bounced 2026-03-10 09:30 5.1.1" in shown.stdout
    assert "returned mail #1: hard_bounce (bounced)" in shown.stdout
    # The person's copy of their data holds the bounce state and the kept report itself.
    exported = json.loads(runner.invoke(args=["contacts", "export", "dead@example.net"]).stdout)
    came_back = exported["mail_that_came_back"]
    assert (came_back["bounce_code"], came_back["bounce_score"]) == ("5.1.1", 0)
    [kept] = came_back["reports"]
    assert (kept["kind"], kept["outcome"]) == ("hard_bounce", "bounced")
    assert "Undelivered Mail Returned to Sender" in kept["raw"]


@pytest.mark.all_databases
def test_kept_messages_go_after_the_keep_days_and_with_erasure(app, session, settings, clock):
    keys = intake.Intake.from_settings(settings, "example.org")
    contact = make_contact(session, "ana@example.net")
    session.commit()
    for n in range(2):
        intake.receive(
            session,
            f"Subject: note {n}\n\nhello\n".encode(),
            recipient=verp.bounce_address(settings.secret_keys, NOTICE, contact.id, BOUNCE_DOMAIN),
            now=clock() - timedelta(days=31 * n),
            today=TODAY,
            intake=keys,
        )
    session.commit()
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 2

    report = retention.run(
        session,
        today=TODAY,
        now=clock(),
        years=5,
        grace_days=30,
        dry_run=False,
        inbound_keep_days=30,
    )
    session.commit()
    assert report.inbound_deleted == 1
    assert session.scalar(select(InboundMessage.contact_id)) == contact.id

    from prefsvc.privacy import erasure

    erasure.remove_personal_data(session, contact)
    session.commit()
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0


def _dead_deliveries(session, count: int) -> list[Delivery]:
    emails = [f"dead{n}@example.net" for n in range(count)]
    return make_sent_deliveries(session, make_topic(session), emails)


def _hard_bounces(settings, deliveries: list[Delivery]) -> list[tuple[bytes, str]]:
    codec = verp.codec(settings.secret_keys)
    return [
        (
            retoken("postfix-5.1.1.eml", codec, {101: delivery.id}),
            codec.address(BOUNCES, DELIVERY, delivery.id, BOUNCE_DOMAIN),
        )
        for delivery in deliveries
    ]


def _bounced_events(session) -> int:
    return session.scalar(select(func.count()).where(ConsentEvent.kind == EventKind.BOUNCED))


@pytest.mark.all_databases
def test_reports_taken_together_count_the_same_one_twice_once(app, session, settings):
    first, second = _hard_bounces(settings, _dead_deliveries(session, 2))

    outcomes = inbound_command.receive_group([first, second, first])

    assert outcomes == ["bounced", "bounced", "duplicate"]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 2
    assert _bounced_events(session) == 2


@pytest.mark.all_databases
def test_a_group_notes_its_deliveries_feedback_in_one_statement_on_postgresql(
    app, session, settings
):
    deliveries = _dead_deliveries(session, 4)
    messages = _hard_bounces(settings, deliveries)
    updates = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE DELIVERIES"):
            updates.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        outcomes = inbound_command.receive_group([*messages, messages[0]])
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert outcomes == ["bounced"] * 4 + ["duplicate"]
    session.expire_all()
    assert [session.get(Delivery, d.id).feedback for d in deliveries] == ["hard_bounce"] * 4
    assert len(updates) == (1 if engine.dialect.name == "postgresql" else 4)


@pytest.mark.all_databases
def test_a_report_that_cannot_be_taken_fails_alone_and_the_rest_of_its_group_is_kept(
    app, session, settings, monkeypatch
):
    deliveries = _dead_deliveries(session, 3)
    messages = _hard_bounces(settings, deliveries)
    act = policy.act

    def act_but_not_on_the_second(session, kind, target, **options):
        if target.delivery_id == deliveries[1].id:
            raise RuntimeError("cannot take this one")
        return act(session, kind, target, **options)

    monkeypatch.setattr(policy, "act", act_but_not_on_the_second)

    outcomes = inbound_command.receive_group(messages)

    assert outcomes[0] == outcomes[2] == "bounced"
    assert isinstance(outcomes[1], RuntimeError)  # answered 451: the MTA sends it again
    session.expire_all()
    kept = session.scalars(select(InboundMessage.delivery_id)).all()
    assert sorted(kept) == sorted([deliveries[0].id, deliveries[2].id])
    assert [session.get(Contact, d.contact_id).bounced_at is not None for d in deliveries] == [
        True,
        False,
        True,
    ]
    assert _bounced_events(session) == 2
