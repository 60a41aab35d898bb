"""Transports: SMTP over one kept-open connection with mapped failures, and a Maildir outbox."""

from __future__ import annotations

import mailbox
import smtplib
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given
from hypothesis import strategies as st

from prefsvc.mail.messages import MessageBuilder
from prefsvc.mail.rendering import Rendered
from prefsvc.mail.transport import (
    MaildirTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    _angle_address,
    open_transport,
)
from tests.smtp import RecordingSMTPServer

SENDER = "news@example.org"
BUILDER = MessageBuilder(from_addr=f"Opleidingen <{SENDER}>", msgid_domain="example.org")


def message(to: str, subject: str = "Nieuws") -> bytes:
    rendered = Rendered(
        subject=subject,
        html="<p>Beste Zoë,</p>\n.\n<p>" + "x" * 3000 + "</p>",
        text="Beste Zoë,\n.\nFrom here\n",
    )
    return BUILDER.campaign_message(
        to=to,
        rendered=rendered,
        unsubscribe_url="https://news.example.org/u/t",
        list_id="Haven <haven.example.org>",
        now=datetime(2026, 3, 10, tzinfo=UTC),
    )[1]


PIPELINING_OR_NOT = {"params": [True, False], "ids": ["pipelining", "one command at a time"]}


@pytest.fixture(**PIPELINING_OR_NOT)
def smtp_server(request):
    """The recording server, advertising PIPELINING (like Postfix) or not (the fallback)."""
    with RecordingSMTPServer(pipelining=request.param) as server:
        yield server


@pytest.fixture
def smtp(smtp_server):
    transport = open_transport(smtp_server.url)
    yield transport
    transport.close()


def test_messages_arrive_intact_over_one_connection(smtp_server, smtp):
    sent = [message(f"person{i}@example.org", f"Nieuws {i}") for i in range(5)]
    for i, data in enumerate(sent):
        smtp.send(sender=SENDER, recipients=[f"person{i}@example.org"], message=data)
    received = smtp_server.received
    assert [r.data for r in received] == sent  # byte for byte, dot-stuffing undone
    assert [r.recipients for r in received] == [[f"person{i}@example.org"] for i in range(5)]
    assert {r.sender for r in received} == {SENDER}
    assert received[3].message["Subject"] == "Nieuws 3"
    assert smtp.connections_opened == 1


def test_temporary_refusal_is_a_temporary_failure(smtp_server, smtp):
    smtp_server.script("later@example.org", "451 4.7.1 Greylisted, try again in 5 minutes")
    with pytest.raises(TemporaryFailure) as caught:
        smtp.send(sender=SENDER, recipients=["later@example.org"], message=message("later@x"))
    assert caught.value.code == 451
    assert caught.value.text == "4.7.1 Greylisted, try again in 5 minutes"
    assert smtp_server.received == []


@pytest.mark.parametrize(
    "stage, reply, failure, connections",
    [
        ("rcpt", "550 5.1.1 No such user", PermanentFailure, 1),
        ("mail", "451 4.3.0 Sender check failed, try later", TemporaryFailure, 1),
        ("content", "554 5.7.1 Message rejected as spam", PermanentFailure, 1),
        ("rcpt", "421 4.3.2 Too busy, closing", TemporaryFailure, 2),  # the server hangs up
    ],
    ids=["recipient-550", "sender-451", "content-554", "closing-421"],
)
def test_a_refusal_is_mapped_with_its_code_and_the_next_message_goes_through(
    smtp_server, smtp, stage, reply, failure, connections
):
    script = {
        "rcpt": lambda: smtp_server.script("refused@example.org", reply),
        "mail": lambda: smtp_server.script_mail(reply),
        "content": lambda: smtp_server.script_content(reply),
    }
    script[stage]()
    with pytest.raises(failure) as caught:
        smtp.send(sender=SENDER, recipients=["refused@example.org"], message=message("r@x"))
    assert f"{caught.value.code} {caught.value.text}" == reply
    smtp.send(sender=SENDER, recipients=["ana@example.org"], message=message("ana@example.org"))
    assert [r.recipients for r in smtp_server.received] == [["ana@example.org"]]
    assert smtp.connections_opened == connections


def test_pipelining_sends_mail_rcpt_and_data_in_one_go():
    """A server that answers only once MAIL, RCPT and DATA have all arrived (RFC 2920)."""
    from tests.smtp import StrictPipeliningServer

    with StrictPipeliningServer() as server:
        transport = SmtpTransport("127.0.0.1", server.port, timeout=5)
        for to in ("a@example.org", "b@example.org"):
            transport.send(sender=SENDER, recipients=[to], message=message(to))
        transport.close()
    assert [r.recipients for r in server.received] == [["a@example.org"], ["b@example.org"]]
    assert server.received[1].message["To"] == "b@example.org"


def test_messages_arrive_intact_at_postfix_smtp_sink():
    """Postfix's own SMTP server (smtp-sink, advertising PIPELINING) takes what we send."""
    from tests.smtp import postfix_smtp_sink

    sent = {f"person{i}@example.org": message(f"person{i}@example.org") for i in range(20)}
    with postfix_smtp_sink() as (port, dumps):
        transport = SmtpTransport("127.0.0.1", port)
        for to, data in sent.items():
            transport.send(sender=SENDER, recipients=[to], message=data)
        transport.close()
        received = dumps()
    assert transport.connections_opened == 1
    assert sorted(r.recipients[0] for r in received) == sorted(sent)
    for r in received:  # the dump adds smtp-sink's own headers in front of what it received
        dumped = r.data.replace(b"\n", b"\r\n").rstrip(b"\r\n")
        assert dumped.endswith(sent[r.recipients[0]].rstrip(b"\r\n"))
        assert r.message["Subject"] == "Nieuws"


def test_transport_reconnects_after_the_server_restarted(smtp_server, smtp):
    smtp.send(sender=SENDER, recipients=["a@example.org"], message=message("a@example.org"))
    smtp_server.stop()
    smtp_server.controller = Controller(
        smtp_server.handler, hostname="127.0.0.1", port=smtp_server.port
    )
    smtp_server.start()
    smtp.send(sender=SENDER, recipients=["b@example.org"], message=message("b@example.org"))
    assert [r.recipients for r in smtp_server.received] == [["a@example.org"], ["b@example.org"]]
    assert smtp.connections_opened == 2


@pytest.fixture(**PIPELINING_OR_NOT)
def smtputf8_server(request):
    """The recording server offering SMTPUTF8 (RFC 6531), with and without PIPELINING."""
    with RecordingSMTPServer(smtputf8=True, pipelining=request.param) as server:
        yield server


def test_idn_domain_goes_into_the_envelope_in_its_idna_form(smtp_server, smtp):
    sent = message("jan@exämple.be")
    smtp.send(sender=SENDER, recipients=["jan@exämple.be"], message=sent)
    smtp.send(sender=SENDER, recipients=["ana@faß.de"], message=message("ana@faß.de"))
    smtp.send(sender=SENDER, recipients=["ana@example.org"], message=message("ana@example.org"))
    jan, ana_de, ana = smtp_server.received
    assert jan.recipients == ["jan@xn--exmple-cua.be"] and jan.data == sent
    assert jan.message["To"] == "jan@xn--exmple-cua.be"
    assert "SMTPUTF8" not in jan.mail_options
    assert ana_de.recipients == ["ana@xn--fa-hia.de"]  # IDNA 2008; never fass.de
    assert ana.recipients == ["ana@example.org"]
    assert smtp.connections_opened == 1


def test_utf8_local_part_is_a_permanent_failure_without_smtputf8_and_the_next_send_works(
    smtp_server, smtp
):
    with pytest.raises(PermanentFailure) as caught:
        smtp.send(sender=SENDER, recipients=["zoë@example.org"], message=message("zoë@example.org"))
    assert caught.value.code is None
    assert "does not offer SMTPUTF8" in caught.value.text and "@" not in caught.value.text
    smtp.send(sender=SENDER, recipients=["ana@example.org"], message=message("ana@example.org"))
    assert [r.recipients for r in smtp_server.received] == [["ana@example.org"]]
    assert smtp.connections_opened == 1


def test_utf8_local_part_is_sent_with_smtputf8_where_the_server_offers_it(smtputf8_server):
    transport = open_transport(smtputf8_server.url)
    sent = {to: message(to) for to in ("zoë@exämple.be", "ana@example.org", "zoë@example.org")}
    for to, data in sent.items():
        transport.send(sender=SENDER, recipients=[to], message=data)
    transport.close()
    received = smtputf8_server.received
    assert [r.recipients for r in received] == [
        ["zoë@xn--exmple-cua.be"],
        ["ana@example.org"],
        ["zoë@example.org"],
    ]
    assert [r.data for r in received] == list(sent.values())  # byte for byte
    assert ["SMTPUTF8" in r.mail_options for r in received] == [True, False, True]
    assert received[0].message["To"] == "zoë@xn--exmple-cua.be"
    assert received[2].message["To"] == "zoë@example.org"
    assert transport.connections_opened == 1


def test_unreachable_server_is_a_temporary_failure():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = SmtpTransport("127.0.0.1", port, timeout=2)
    with pytest.raises(TemporaryFailure) as caught:
        transport.send(sender=SENDER, recipients=["a@example.org"], message=message("a@x"))
    assert caught.value.code is None
    assert transport.connections_opened == 0


@pytest.mark.parametrize(
    "url, host, port, security, username, password",
    [
        (
            "smtp://user:p%40ss@mail.example.org:2525",
            "mail.example.org",
            2525,
            "plain",
            "user",
            "p@ss",
        ),
        ("smtp://mail.example.org", "mail.example.org", 25, "plain", None, None),
        ("smtps://me%2Bnews@mail.example.org", "mail.example.org", 465, "ssl", "me+news", None),
        ("smtp+starttls://u:%C3%A9t%C3%A9%3A1@relay:0587", "relay", 587, "starttls", "u", "été:1"),
        ("smtp+starttls://relay", "relay", 587, "starttls", None, None),
    ],
)
def test_open_transport_reads_mail_url(url, host, port, security, username, password):
    transport = open_transport(url)
    assert isinstance(transport, SmtpTransport)
    assert (transport.host, transport.port, transport.security) == (host, port, security)
    assert (transport.username, transport.password) == (username, password)
    assert transport.connections_opened == 0  # lazy: nothing is opened until the first send


@pytest.mark.parametrize("existing", ["missing", "empty-folder"])
def test_maildir_messages_are_readable_by_mailbox_maildir(tmp_path: Path, existing: str):
    path = tmp_path / "outbox"
    if existing == "empty-folder":
        path.mkdir()
    transport = open_transport(f"maildir:{path}")
    assert isinstance(transport, MaildirTransport)
    sent = [message(f"p{i}@example.org", f"Nieuws {i}") for i in range(3)]
    for data in sent:
        transport.send(sender=SENDER, recipients=["x@example.org"], message=data)
    transport.close()
    box = mailbox.Maildir(str(path), create=False)
    return_path = f"Return-Path: <{SENDER}>\r\n".encode()
    assert sorted(box.get_bytes(k) for k in box.keys()) == sorted(return_path + m for m in sent)
    assert sorted(m["Subject"] for m in box) == ["Nieuws 0", "Nieuws 1", "Nieuws 2"]


@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
def test_a_maildir_message_says_where_it_would_bounce_to(tmp_path: Path, line_end: str):
    """A Maildir keeps no envelope: the Return-Path a final delivery adds records it, so the
    bounce address of the default outbox can be read (and checked) in the message."""
    transport = open_transport(f"maildir:{tmp_path / 'outbox'}")
    data = message("p@example.org", "Nieuws").replace(b"\r\n", line_end.encode())
    bounces = "bounces+AbC-12_x@bounces.example.org"
    transport.send(sender=bounces, recipients=["p@example.org"], message=data)
    (stored,) = mailbox.Maildir(str(tmp_path / "outbox"), create=False)
    assert stored["Return-Path"] == f"<{bounces}>"
    assert stored["Subject"] == "Nieuws"  # the message's own headers follow, unchanged


@given(st.emails() | st.text(max_size=40))
def test_envelope_addresses_are_quoted_as_smtplib_quotes_them(address):
    """The pipelined commands skip quoteaddr's parser for plain addresses, and only for those."""
    assert _angle_address(address) == smtplib.quoteaddr(address)
