"""``prefsvc inbound imap`` and the scheduler against a real Dovecot: take each message, move
it, delete nothing."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from prefsvc.inbound import imap, verp
from prefsvc.models import Contact, ContactStatus, InboundMessage
from prefsvc.queue import scheduler
from prefsvc.settings import SETTINGS_KEY
from tests.factories import make_sent_deliveries, make_topic
from tests.inbound.dovecot import Dovecot
from tests.inbound.samples import BOUNCE_DOMAIN, CORPUS, retoken


@pytest.fixture(scope="module")
def dovecot():
    with Dovecot() as server:
        yield server


@pytest.fixture
def settings(settings, dovecot, request):
    user = f"returns-{request.node.name[-12:].strip('[]-')}-{id(request)}"
    return settings.with_(
        bounce_domain=BOUNCE_DOMAIN, inbound_imap_url=dovecot.url(user, "?processed=Done")
    )


def mailbox_of(settings) -> imap.Mailbox:
    return imap.Mailbox.from_url(settings.inbound_imap_url)


def folder_counts(dovecot, mailbox: imap.Mailbox) -> dict[str, int]:
    client = dovecot.client(mailbox.username)
    try:
        return {
            name: client.folder_status(name, [b"MESSAGES"])[b"MESSAGES"]
            for name in ("INBOX", mailbox.processed)
            if client.folder_exists(name)
        }
    finally:
        client.logout()


def deliver_to_mailbox(dovecot, mailbox: imap.Mailbox, *messages: bytes) -> None:
    client = dovecot.client(mailbox.username)
    try:
        for raw in messages:
            client.append("INBOX", raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    finally:
        client.logout()


def _sent(session, topic, *emails):
    deliveries = make_sent_deliveries(session, topic, list(emails))
    return [session.get(Contact, d.contact_id) for d in deliveries], [d.id for d in deliveries]


@pytest.mark.all_databases
def test_polling_takes_every_message_once_and_moves_it_to_the_processed_folder(
    app, session, settings, runner, dovecot
):
    topic = make_topic(session)
    (dead, spam, away), ids = _sent(
        session, topic, "dead@example.net", "spam@example.net", "away@example.net"
    )
    codec = verp.codec(settings.secret_keys)
    mailbox = mailbox_of(settings)
    deliver_to_mailbox(
        dovecot,
        mailbox,
        retoken("postfix-5.1.1.eml", codec, {101: ids[0]}),  # Delivered-To names the delivery
        retoken("yahoo-arf-abuse.eml", codec, {101: ids[1]}),  # the returned headers do
        (CORPUS / "ooo-auto-submitted.eml").read_bytes(),
        b"Subject: a note from a colleague\n\nnot a report at all\n",
        b"\x00\xff\xfe garbage that is no message \x80\n",
    )

    first = runner.invoke(args=["inbound", "imap"])
    again = runner.invoke(args=["inbound", "imap"])

    assert (first.exit_code, first.stdout) == (0, "taken 5, left 0\n")
    assert (again.exit_code, again.stdout) == (0, "taken 0, left 0\n")
    # Nothing deleted: all five are in the processed folder, none left in the inbox.
    assert folder_counts(dovecot, mailbox) == {"INBOX": 0, "Done": 5}
    session.expire_all()
    assert session.get(Contact, dead.id).bounce_code == "5.1.1"
    assert session.get(Contact, spam.id).complained_at is not None
    assert session.get(Contact, away.id).status is ContactStatus.ACTIVE
    kinds = session.scalars(select(InboundMessage.outcome).order_by(InboundMessage.id)).all()
    assert kinds == ["bounced", "complained", "ignored", "ignored", "ignored"]


def test_a_message_whose_intake_failed_stays_in_the_inbox_for_the_next_poll(
    app, session, settings, dovecot
):
    mailbox = mailbox_of(settings)
    deliver_to_mailbox(dovecot, mailbox, b"Subject: one\n\n1\n", b"Subject: two\n\n2\n")
    taken = []

    def receive(raw: bytes) -> None:
        if b"Subject: two" in raw:
            raise ConnectionError("database away")
        taken.append(raw)

    report = imap.poll(mailbox, receive)

    assert (report.taken, report.left, len(taken)) == (1, 1, 1)
    assert folder_counts(dovecot, mailbox) == {"INBOX": 1, "Done": 1}
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0


def test_a_wrong_password_or_an_unset_url_is_one_line_not_a_traceback(
    app, settings, dovecot, runner, monkeypatch
):
    wrong = settings.inbound_imap_url.replace(":imap-test-secret@", ":wrong-secret@")
    monkeypatch.setitem(app.extensions, SETTINGS_KEY, settings.with_(inbound_imap_url=wrong))
    refused = runner.invoke(args=["inbound", "imap"])
    monkeypatch.setitem(app.extensions, SETTINGS_KEY, settings.with_(inbound_imap_url=None))
    unset = runner.invoke(args=["inbound", "imap"])

    assert refused.exit_code == 1 and refused.stderr.startswith("Error: IMAP 127.0.0.1: ")
    assert refused.stderr.count("\n") == 1 and "wrong-secret" not in refused.stderr
    assert (unset.exit_code, unset.stderr) == (
        1,
        "Error: PREFSVC_INBOUND_IMAP_URL is not set\n",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "imaps://bounce%40example.org:p%3Ass@mail.example.org/Returns?processed=Returns/Done",
            ("mail.example.org", 993, "bounce@example.org", "p:ss", "Returns", "Returns/Done"),
        ),
        (
            "imap+starttls://u:p@mail.example.org:1143",
            ("mail.example.org", 1143, "u", "p", "INBOX", "Processed"),
        ),
    ],
)
def test_the_mailbox_url_names_server_account_and_both_folders(url, expected):
    mailbox = imap.Mailbox.from_url(url)
    got = (mailbox.host, mailbox.port, mailbox.username, mailbox.password, mailbox.folder)
    assert got + (mailbox.processed,) == expected
    assert "p:ss" not in repr(mailbox)


@pytest.mark.all_databases
def test_the_scheduler_polls_the_mailbox_at_most_once_per_interval(
    app, session, settings, dovecot, clock
):
    """Issue 17: with INBOUND_IMAP_URL set, the deployed scheduler takes the returned mail."""
    topic = make_topic(session)
    (first, second), ids = _sent(session, topic, "first@example.net", "second@example.net")
    codec = verp.codec(settings.secret_keys)
    mailbox = mailbox_of(settings)
    deliver_to_mailbox(dovecot, mailbox, retoken("postfix-5.1.1.eml", codec, {101: ids[0]}))

    polled = scheduler.tick(session, settings, now=clock())
    deliver_to_mailbox(dovecot, mailbox, retoken("postfix-5.1.1.eml", codec, {101: ids[1]}))
    too_soon = scheduler.tick(session, settings, now=clock() + timedelta(seconds=30))
    waiting = folder_counts(dovecot, mailbox)
    later = scheduler.tick(
        session, settings, now=clock() + timedelta(seconds=settings.inbound_imap_seconds)
    )

    assert (polled.imap_polled, polled.imap_taken) == (True, 1)
    assert (too_soon.imap_polled, waiting) == (False, {"INBOX": 1, "Done": 1})
    assert (later.imap_polled, later.imap_taken) == (True, 1)
    assert folder_counts(dovecot, mailbox) == {"INBOX": 0, "Done": 2}
    session.expire_all()
    assert session.get(Contact, first.id).bounced_at is not None
    assert session.get(Contact, second.id).bounced_at is not None


def test_a_failing_imap_server_is_logged_without_the_account_and_the_tick_goes_on(
    app, session, settings, dovecot, clock, caplog
):
    wrong = settings.with_(
        inbound_imap_url=settings.inbound_imap_url.replace(":imap-test-secret@", ":wrong-secret@")
    )
    user = mailbox_of(settings).username

    with caplog.at_level(logging.WARNING, logger="prefsvc.queue.scheduler"):
        report = scheduler.tick(session, wrong, now=clock())
    retried_at_once = scheduler.tick(session, wrong, now=clock() + timedelta(seconds=5))

    assert (report.imap_polled, report.imap_taken, report.retention_ran) == (True, 0, True)
    assert scheduler.last_run(session) is not None  # the tick finished: the admin sees it ran
    assert not retried_at_once.imap_polled  # a server that is down is not hammered
    assert "IMAP poll of 127.0.0.1 failed" in caplog.text
    assert user not in caplog.text and "wrong-secret" not in caplog.text
