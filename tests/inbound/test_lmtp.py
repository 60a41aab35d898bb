"""``prefsvc inbound serve`` behind a real Postfix, configured as the README tells a user.

A campaign goes out through Postfix to local mailboxes that do not exist and to a domain that
refuses it by policy; Postfix writes its own DSNs and hands them, with everything else mailed
to the bounce domain (a complaint, an out-of-office, a ``mailto:`` unsubscribe), over its
transport map to the LMTP server. The next campaign leaves the right people out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from prefsvc.campaigns import audience, campaigns
from prefsvc.commands import inbound as inbound_command
from prefsvc.inbound import lmtp, verp
from prefsvc.inbound.verp import BOUNCES, DELIVERY, UNSUBSCRIBE
from prefsvc.models import (
    Contact,
    ContactStatus,
    Delivery,
    InboundMessage,
    Subscription,
    SubscriptionStatus,
)
from tests.factories import make_campaign, make_contact, make_topic
from tests.inbound import postfix as postfix_instance
from tests.inbound.samples import BOUNCE_DOMAIN, CORPUS, retoken

TODAY = date(2026, 3, 10)


@pytest.fixture
def postfix():
    lmtp_port = postfix_instance.free_port()
    with postfix_instance.Postfix(bounce_domain=BOUNCE_DOMAIN, lmtp_port=lmtp_port) as server:
        yield server


@pytest.fixture
def settings(settings, postfix):
    return settings.with_(mail_url=postfix.url, bounce_domain=BOUNCE_DOMAIN)


@pytest.fixture
def lmtp_server(app, postfix):
    controller = inbound_command.server(app, host="127.0.0.1", port=postfix.lmtp_port)
    controller.start()
    yield controller
    controller.stop()
    controller.handler.close()


def wait_for_reports(session, count: int, postfix, timeout: float = 15.0) -> None:
    """Wait until ``count`` returned messages are kept (Postfix works on its own schedule)."""
    deadline = time.monotonic() + timeout
    while True:
        session.commit()  # a fresh snapshot of what the LMTP threads wrote
        kept = session.scalar(select(func.count()).select_from(InboundMessage))
        if kept >= count:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{kept} of {count} reports arrived; Postfix log:\n{postfix.log_text()}")
        time.sleep(0.1)


def mail_through(postfix, raw: bytes, sender: str, recipient: str) -> None:
    with smtplib.SMTP("127.0.0.1", postfix.smtp_port) as client:
        client.sendmail(sender, [recipient], raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


@pytest.mark.all_databases
def test_a_campaign_through_postfix_comes_back_and_the_next_one_leaves_them_out(
    app, session, settings, run_campaign, postfix, lmtp_server
):
    topic = make_topic(session, "haven")
    names = {
        "gone": f"gone@{postfix_instance.MAILBOXES_MISSING}",
        "left": f"left@{postfix_instance.MAILBOXES_MISSING}",
        "listed": f"listed@{postfix_instance.POLICY_REFUSED}",
        "away": f"away@{postfix_instance.ALIVE}",
        "spam": f"spam@{postfix_instance.ALIVE}",
        "unsub": f"unsub@{postfix_instance.ALIVE}",
    }
    people = {name: make_contact(session, email, topics=[topic]) for name, email in names.items()}
    first = make_campaign(session, topic)
    session.commit()

    run_campaign(first.id)
    # Postfix bounces the two missing mailboxes (5.1.1, local(8)) with DSNs of its own; the
    # policy refusal (5.7.1) it gives at RCPT time, during the campaign's SMTP conversation.
    wait_for_reports(session, 2, postfix)

    codec = verp.codec(settings.secret_keys)
    ident = dict(
        session.execute(
            select(Delivery.contact_id, Delivery.id).where(Delivery.campaign_id == first.id)
        ).all()
    )
    delivery = {name: ident[contact.id] for name, contact in people.items()}
    # What recipients' providers send back, through the same Postfix: a complaint to the plain
    # bounce mailbox, an out-of-office to the VERP sender, a mail to the List-Unsubscribe mailto:.
    arf = retoken("yahoo-arf-abuse.eml", codec, {101: delivery["spam"]})
    mail_through(postfix, arf, "feedback@arf.mail.yahoo.com", f"bounces@{BOUNCE_DOMAIN}")
    away = (CORPUS / "ooo-auto-submitted.eml").read_bytes()
    mail_through(
        postfix, away, "", codec.address(BOUNCES, DELIVERY, delivery["away"], BOUNCE_DOMAIN)
    )
    unsubscribe = EmailMessage()
    unsubscribe["From"], unsubscribe["Subject"] = names["unsub"], "unsubscribe"
    unsubscribe.set_content("unsubscribe\n")
    mailto = codec.address(UNSUBSCRIBE, DELIVERY, delivery["unsub"], BOUNCE_DOMAIN)
    mail_through(postfix, unsubscribe.as_bytes(), names["unsub"], mailto)
    wait_for_reports(session, 5, postfix)

    session.expire_all()
    contact = {name: session.get(Contact, person.id) for name, person in people.items()}
    for name in ("gone", "left"):
        assert contact[name].bounced_at is not None and contact[name].bounce_code == "5.1.1"
        assert "unknown user" in contact[name].bounce_diagnostic
    assert contact["spam"].complained_at is not None
    assert contact["spam"].status is ContactStatus.UNSUBSCRIBED
    for name in ("listed", "away"):
        assert (contact[name].bounced_at, contact[name].complained_at) == (None, None)
        assert contact[name].status is ContactStatus.ACTIVE
    assert (
        session.scalar(
            select(Subscription.status).where(Subscription.contact_id == contact["unsub"].id)
        )
        is SubscriptionStatus.UNSUBSCRIBED
    )
    figures = campaigns.stats(session, first, today=TODAY, years=5)
    assert (figures["bounced"], figures["complained"], figures["policy_refusals"]) == (2, 1, 1)

    second = make_campaign(session, topic)
    session.commit()
    count = audience.count(session, second, on=TODAY, years=5)
    assert count.excluded == {"bounced": 2, "complained": 1, "unsubscribed": 1}
    assert count.audience == 2  # the refused one and the one away: not their fault


def _serve_processes(settings, port: int) -> subprocess.Popen:
    """``prefsvc inbound serve --processes 2`` as deployed, configured by ``PREFSVC_*``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "PREFSVC_INSTANCE_PATH": str(settings.instance_path),
        "PREFSVC_DATABASE_URL": settings.database_url,
        "PREFSVC_SECRET_KEYS": ",".join(settings.secret_keys),
        "PREFSVC_SUPPRESSION_KEY": settings.suppression_key,
        "PREFSVC_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
    }
    env.pop("PREFSVC_BROKER_URL", None)
    command = [sys.executable, "-c", "from prefsvc.commands import main; main()", "inbound"]
    command += ["serve", "--port", str(port), "--processes", "2", "--threads", "2"]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(_children(server)) < 2 or not _accepts(port):
        assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
        time.sleep(0.1)
    return server


def _children(server: subprocess.Popen) -> list[int]:
    try:
        text = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_with_two_processes_shares_the_port_and_stops_on_sigterm(app, session, settings):
    topic = make_topic(session)
    campaign = make_campaign(session, topic)
    people = [make_contact(session, f"dead{n}@example.net", topics=[topic]) for n in range(6)]
    session.flush()
    deliveries = [Delivery(campaign_id=campaign.id, contact_id=p.id) for p in people]
    session.add_all(deliveries)
    session.commit()
    codec = verp.codec(settings.secret_keys)
    port = postfix_instance.free_port()
    server = _serve_processes(settings, port)
    children = _children(server)
    try:
        replies = []
        for delivery in deliveries:  # one connection each: the kernel spreads them
            with smtplib.LMTP("127.0.0.1", port) as client:
                client.ehlo()
                client.mail("")
                client.rcpt(codec.address(BOUNCES, DELIVERY, delivery.id, BOUNCE_DOMAIN))
                raw = retoken("postfix-5.1.1.eml", codec, {101: delivery.id})
                replies.append(client.data(raw.replace(b"\n", b"\r\n"))[1].decode())
    finally:
        server.send_signal(signal.SIGTERM)
        said = server.communicate(timeout=30)[1]

    assert replies == ["2.0.0 Ok: bounced"] * 6
    assert server.returncode == 0 and said.count("\n") == 1  # "LMTP on …: 2 processes"
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    session.expire_all()
    assert all(session.get(Contact, p.id).bounced_at is not None for p in people)


def test_when_one_server_process_dies_the_others_stop_and_the_exit_status_says_so(app, settings):
    server = _serve_processes(settings, postfix_instance.free_port())
    first, second = _children(server)

    os.kill(first, signal.SIGKILL)
    said = server.communicate(timeout=30)[1]

    assert server.returncode == 1
    assert f"LMTP server process {first} ended" in said
    assert not Path(f"/proc/{second}").exists()


def test_the_supervisor_hands_connections_to_the_processes_in_turn(app, settings):
    """SO_REUSEPORT spread 16 long-lived connections by a hash: often 11 to 5."""
    server = _serve_processes(settings, postfix_instance.free_port())
    port = int(server.args[server.args.index("--port") + 1])
    children = _children(server)
    clients = []
    try:
        for _ in range(6):
            client = smtplib.LMTP("127.0.0.1", port)
            client.ehlo()  # answered: the connection has reached its process
            clients.append(client)
        served = [_connections_to(pid, port) for pid in children]
    finally:
        for client in clients:
            client.close()
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)

    assert served == [3, 3]


def test_when_the_supervisor_is_killed_its_server_processes_stop(app, settings):
    server = _serve_processes(settings, postfix_instance.free_port())
    children = _children(server)

    os.kill(server.pid, signal.SIGKILL)
    server.communicate(timeout=20)  # its stderr closes as its processes end

    deadline = time.monotonic() + 10  # closing their files comes a moment before the end
    while any(_alive(pid) for pid in children):
        assert time.monotonic() < deadline, "a server process outlived its supervisor"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _connections_to(pid: int, port: int) -> int:
    """Count the TCP connections to ``port`` whose socket process ``pid`` holds."""
    inodes = set()
    for link in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(link)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rpartition(":")[2], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:  # established
            count += 1
    return count


@pytest.mark.parametrize(
    "path",
    [
        "<bounces+abc@bounces.example.org>",
        "<Bounces+ABC@Bounces.Example.ORG>  BODY=8BITMIME SMTPUTF8",
        " <a.b@example.org> SIZE=100",
        "<>",
        " <>  BODY=8BITMIME SMTPUTF8",
        "<>x",
        '<"q u"@example.org>',
        "<a..b@example.org>",
        "<a@[127.0.0.1]>",
        "a@example.org",
        "<@relay.example.org:b@example.org>",
        "<a@example.org>>",
    ],
)
def test_the_servers_quick_reading_of_a_path_agrees_with_aiosmtpd(path):
    import asyncio

    from aiosmtpd.smtp import SMTP

    from prefsvc.inbound.lmtp import _Server

    loop = asyncio.new_event_loop()
    try:
        server = _Server(object(), loop=loop)
        assert server._getaddr(path) == SMTP._getaddr(server, path)
    finally:
        loop.close()


class _Capture:
    """A handler that keeps each message's content as the server handed it over."""

    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.contents.append(envelope.original_content)
        return "250 2.0.0 kept"


class _StockController(lmtp.LmtpController):
    """aiosmtpd's own LMTP server (line by line), lenient about line length as ours is."""

    def factory(self):
        from aiosmtpd.lmtp import LMTP

        class Stock(LMTP):
            line_length_limit = lmtp._Server.line_length_limit

        return Stock(self.handler, **self.SMTP_kwargs)


def _data_exchanges(controller_class, payloads: list[list[bytes]], limit: int) -> tuple:
    """Send each payload (the octets after DATA, in the chunks given) in one connection;
    return the replies and the contents the server handed over."""
    handler = _Capture()
    port = postfix_instance.free_port()
    controller = controller_class(
        handler, hostname="127.0.0.1", port=port, data_size_limit=limit, decode_data=False
    )
    controller.start()
    replies = []
    try:
        with smtplib.LMTP("127.0.0.1", port) as client:
            client.ehlo()
            for chunks in payloads:
                client.mail("")
                client.rcpt(f"bounces+a@{BOUNCE_DOMAIN}")
                assert client.docmd("DATA")[0] == 354
                for chunk in chunks:
                    client.send(chunk)
                    time.sleep(0.001)  # separate reads on the server, as over a network
                replies.append(client.getreply())
    finally:
        controller.stop()
    return replies, handler.contents


DATA_CASES = [
    [b".\r\n"],  # an empty message
    [b"Subject: one line\r\n.\r\n"],
    [b"Subject: a\r\n\r\nEnds with a dot.\r\nAnd another.\r\n", b".\r\n"],
    [b"A: b\r\n\r\n..stuffed\r\n...two\r\n.\r\n"],
    [b"..first line stuffed\r\n.\r\n"],
    [b"A: b\r\n\r\nsplit\r", b"\n", b".", b"\r", b"\n"],  # the end cut in every place
    [b"A: b\r\n\r\n" + b"x" * 70 + b"\r\n" * 600 + b"end.\r\n.\r\n"],  # past one buffer
    [b"A: b\r\n\r\na.\r\n.x\r\n. \r\n.\r\n"],  # dot lines that are not the end
]
LIMIT_CASES = [
    [b"A: b\r\n\r\n" + b"y" * 70 + b"\r\n", b"z" * 20 + b"\r\n.\r\n"],  # past the limit
    [b"A: b\r\n\r\n" + b"y" * 80 + b"\r\n.\r\n"],  # exactly at it
    [b"A: b\r\n\r\nsmall\r\n.\r\n"],  # the next message of the connection
]


def test_reading_data_hands_over_what_aiosmtpd_hands_over_and_answers_the_same():
    """Our DATA reads from dot line to dot line; aiosmtpd's own reads line by line."""
    ours = _data_exchanges(lmtp.LmtpController, DATA_CASES, limit=0)
    assert ours == _data_exchanges(_StockController, DATA_CASES, limit=0)
    replies, contents = ours
    assert [code for code, _ in replies] == [250] * len(DATA_CASES)
    assert contents[3] == b"A: b\r\n\r\n.stuffed\r\n..two\r\n"
    assert len(contents[6]) == 8 + 70 + 2 * 600 + 6

    limit = 90  # the header and the 80 "y" line with their line ends
    ours = _data_exchanges(lmtp.LmtpController, LIMIT_CASES, limit=limit)
    assert ours == _data_exchanges(_StockController, LIMIT_CASES, limit=limit)
    assert [code for code, _ in ours[0]] == [552, 250, 250]


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(
        st.text(alphabet="ab. \t", max_size=12).map(str.encode), min_size=0, max_size=12
    ),
    cut=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=6),
)
def test_any_lines_in_any_chunks_read_as_aiosmtpd_reads_them(lines, cut):
    stuffed = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    payload = stuffed + b".\r\n"
    chunks, position, n = [], 0, 0
    while position < len(payload):
        size = cut[n % len(cut)]
        chunks.append(payload[position : position + size])
        position, n = position + size, n + 1
    ours = _data_exchanges(lmtp.LmtpController, [chunks], limit=0)
    assert ours == _data_exchanges(_StockController, [chunks], limit=0)
    assert ours[1] == [b"".join(line + b"\r\n" for line in lines)]


def _send_in_thread(port: int, recipients: list[str], replies: dict) -> threading.Thread:
    """One LMTP transaction in a thread of its own; its replies land in ``replies``."""

    def send() -> None:
        with smtplib.LMTP("127.0.0.1", port) as client:
            client.ehlo()
            client.mail("")
            for recipient in recipients:
                client.rcpt(recipient)
            answers = [client.data(b"Subject: hello\r\n\r\nhi\r\n")]
            answers += [client.getreply() for _ in recipients[1:]]
            replies[recipients[0]] = answers

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_messages_that_arrive_while_others_commit_are_taken_together_and_each_answered():
    """Group commit: what waits is handed over in one call (one transaction), in order."""
    groups: list[list[str]] = []
    first_held = threading.Event()

    def deliver(messages):
        names = [recipient.partition("@")[0] for _, recipient in messages]
        groups.append(names)
        if len(groups) == 1:  # the first group keeps the worker busy while others arrive
            first_held.wait(10)
        return [f"kept-{name}" for name in names]

    port = postfix_instance.free_port()
    controller = lmtp.controller(deliver, host="127.0.0.1", port=port, threads=8)
    controller.start()
    replies: dict = {}
    try:
        threads = [_send_in_thread(port, [f"bounces+a@{BOUNCE_DOMAIN}"], replies)]
        _wait_for(lambda: len(groups) == 1)
        threads.append(_send_in_thread(port, [f"bounces+b@{BOUNCE_DOMAIN}"], replies))
        _wait_for(lambda: controller.handler._waiting.qsize() == 1)
        two = [f"bounces+c@{BOUNCE_DOMAIN}", f"bounces+d@{BOUNCE_DOMAIN}"]
        threads.append(_send_in_thread(port, two, replies))
        _wait_for(lambda: controller.handler._waiting.qsize() == 3)
        assert not replies  # nothing is answered before its group was delivered
        first_held.set()
        for thread in threads:
            thread.join(10)
    finally:
        controller.stop()
        controller.handler.close()

    assert groups == [["bounces+a"], ["bounces+b", "bounces+c", "bounces+d"]]
    assert replies[f"bounces+a@{BOUNCE_DOMAIN}"] == [(250, b"2.0.0 Ok: kept-bounces+a")]
    assert replies[f"bounces+c@{BOUNCE_DOMAIN}"] == [
        (250, b"2.0.0 Ok: kept-bounces+c"),
        (250, b"2.0.0 Ok: kept-bounces+d"),
    ]


def test_a_message_not_taken_is_answered_451_for_its_recipient_alone():
    def deliver(messages):
        return [
            RuntimeError("database gone") if "bad" in recipient else "kept"
            for _, recipient in messages
        ]

    port = postfix_instance.free_port()
    controller = lmtp.controller(deliver, host="127.0.0.1", port=port)
    controller.start()
    replies: dict = {}
    try:
        recipients = [f"bounces+good@{BOUNCE_DOMAIN}", f"bounces+bad@{BOUNCE_DOMAIN}"]
        _send_in_thread(port, recipients, replies).join(10)
    finally:
        controller.stop()
        controller.handler.close()

    assert replies[recipients[0]] == [
        (250, b"2.0.0 Ok: kept"),
        (451, b"4.3.0 Temporary failure, try again later"),
    ]


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not get there"
        time.sleep(0.01)
