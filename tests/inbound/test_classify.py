from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefsvc.inbound import verp
from prefsvc.inbound.classify import Report, classify
from prefsvc.inbound.codes import Kind, from_status
from prefsvc.inbound.verp import BOUNCES, DELIVERY, NOTICE, UNSUBSCRIBE, Token

CORPUS = Path(__file__).parent / "corpus"
KEYS = ("corpus-secret-key-0123456789",)
CODEC = verp.codec(KEYS)
DOMAIN = "news.example.org"
BOUNCE_DOMAIN = "bounces.example.org"


def envelope(purpose: str, ident: int, kind: str = DELIVERY) -> str:
    return CODEC.address(purpose, kind, ident, BOUNCE_DOMAIN)


# file, envelope recipient, kind, status, token, our Message-ID (hex part), where the id was found
CASES = [
    (
        "postfix-5.1.1.eml",
        envelope(BOUNCES, 101),
        Kind.HARD_BOUNCE,
        "5.1.1",
        Token(BOUNCES, DELIVERY, 101),
        "cf84409fc2a4c1c1f77d4fd54afd2bfd",
        "envelope",
    ),
    (
        "postfix-4.4.1-delayed.eml",
        None,
        Kind.DELAYED,
        "4.4.1",
        None,
        "64df8313d66681e20fbd499bff8a6c49",
        "returned-headers",
    ),
    (
        "exim-non-dsn.eml",
        None,
        Kind.HARD_BOUNCE,
        "5.1.1",
        Token(BOUNCES, DELIVERY, 102),
        "53cb5bf11342bee4f032594e84b47607",
        "returned-text",
    ),
    (
        "office365-5.1.10.eml",
        envelope(BOUNCES, 106),
        Kind.HARD_BOUNCE,
        "5.1.10",
        Token(BOUNCES, DELIVERY, 106),
        "05a6ecc11aaffc0f8230219339b17ecc",
        "envelope",
    ),
    (
        "gmail-5.2.2-full.eml",
        None,
        Kind.SOFT_BOUNCE,
        "5.2.2",
        Token(BOUNCES, DELIVERY, 104),
        "ec55aac305be958650e476e290ef30b4",
        "returned-headers",
    ),
    (
        "yahoo-arf-abuse.eml",
        None,
        Kind.COMPLAINT,
        None,
        Token(BOUNCES, DELIVERY, 101),
        "e87cabbf68ab53ed0a7476509be7d586",
        "returned-headers",
    ),
    (
        "microsoft-jmrp-redacted.eml",
        None,
        Kind.COMPLAINT,
        None,
        None,
        "6e0046ed815cac6a640fc472b4fedd38",
        "returned-headers",
    ),
    (
        "ooo-auto-submitted.eml",
        envelope(BOUNCES, 101),
        Kind.AUTO_REPLY,
        None,
        Token(BOUNCES, DELIVERY, 101),
        "cf84409fc2a4c1c1f77d4fd54afd2bfd",
        "envelope",
    ),
    ("ooo-afwezig-no-header.eml", None, Kind.AUTO_REPLY, None, None, None, None),
    (
        "ooo-reponse-automatique.eml",
        None,
        Kind.AUTO_REPLY,
        None,
        None,
        "ec55aac305be958650e476e290ef30b4",
        "in-reply-to",
    ),
    ("ooo-out-of-office-en.eml", None, Kind.AUTO_REPLY, None, None, None, None),
    (
        "blocklist-5.7.1.eml",
        None,
        Kind.POLICY,
        "5.7.1",
        Token(BOUNCES, DELIVERY, 106),
        "0ed0564af95f625375fc94ba14518b93",
        "returned-headers",
    ),
    ("never-sent.eml", None, Kind.HARD_BOUNCE, "5.1.1", None, None, None),
    (
        "qmail.eml",
        envelope(BOUNCES, 103),
        Kind.HARD_BOUNCE,
        "5.1.1",
        Token(BOUNCES, DELIVERY, 103),
        "3b24f76ff98b21706d8ba32fcf8783fc",
        "envelope",
    ),
    ("forged-verp.eml", None, Kind.HARD_BOUNCE, "5.1.1", None, None, None),
    (
        "unsubscribe-mailto.eml",
        envelope(UNSUBSCRIBE, 105),
        Kind.UNSUBSCRIBE,
        None,
        Token(UNSUBSCRIBE, DELIVERY, 105),
        None,
        "envelope",
    ),
    (
        "exchange-legacy-non-dsn.eml",
        None,
        Kind.HARD_BOUNCE,
        None,
        Token(BOUNCES, DELIVERY, 102),
        "b6abc66ff67be46f1baa287256022131",
        "returned-headers",
    ),
    (
        "global-dsn-relayed.eml",
        None,
        Kind.DELIVERED,
        "2.0.0",
        Token(BOUNCES, NOTICE, 107),
        "cf84409fc2a4c1c1f77d4fd54afd2bfd",
        "returned-headers",
    ),
]


def classify_file(name: str, recipient: str | None) -> Report:
    token = CODEC.parse(recipient) if recipient else None
    raw = (CORPUS / name).read_bytes()
    return classify(raw, envelope=token, codec=CODEC, message_id_domain=DOMAIN)


def test_every_corpus_file_has_an_expectation():
    assert {path.name for path in CORPUS.glob("*.eml")} == {case[0] for case in CASES}


@pytest.mark.parametrize(
    ("name", "recipient", "kind", "status", "token", "message_id", "found_in"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_corpus(name, recipient, kind, status, token, message_id, found_in):
    report = classify_file(name, recipient)
    assert report.kind == kind
    assert report.status == status
    assert report.token == token
    expected_id = f"<{message_id}@{DOMAIN}>" if message_id else None
    assert report.message_id == expected_id
    assert report.found_in == found_in


def test_only_identified_bounces_complaints_and_unsubscribes_are_acted_on():
    acted = {name for name, recipient, *_ in CASES if classify_file(name, recipient).acted_on}
    assert acted == {
        "postfix-5.1.1.eml",
        "exim-non-dsn.eml",
        "office365-5.1.10.eml",
        "gmail-5.2.2-full.eml",
        "yahoo-arf-abuse.eml",
        "microsoft-jmrp-redacted.eml",
        "blocklist-5.7.1.eml",
        "qmail.eml",
        "unsubscribe-mailto.eml",
        "exchange-legacy-non-dsn.eml",
    }


def test_a_forged_envelope_token_names_nothing_and_the_report_is_not_acted_on():
    recipient = "bounces+5ywx3cu434fx73fsiy3z5mvru3vru6t55vsyz4fa@bounces.example.org"
    assert CODEC.parse(recipient) is None
    report = classify_file("forged-verp.eml", recipient)
    assert not report.identified and not report.acted_on


def test_arf_records_its_feedback_type_and_the_campaign_feedback_id():
    report = classify_file("yahoo-arf-abuse.eml", None)
    assert report.format == "arf" and report.feedback_type == "abuse"
    assert report.feedback_id == "12:3:campaign:prefsvc"
    assert classify_file("microsoft-jmrp-redacted.eml", None).feedback_type == "abuse"


def test_a_dsn_reports_each_recipient_with_action_status_and_diagnostic():
    report = classify_file("postfix-5.1.1.eml", None)
    (recipient,) = report.recipients
    assert (recipient.kind, recipient.action, recipient.status) == (
        Kind.HARD_BOUNCE,
        "failed",
        "5.1.1",
    )
    assert recipient.diagnostic.startswith("550 5.1.1")
    assert "User unknown in virtual mailbox table" in recipient.diagnostic
    assert recipient.address == "jan.peeters@example.net"


def test_without_an_envelope_token_the_returned_headers_name_the_delivery():
    report = classify_file("postfix-5.1.1.eml", None)
    assert report.token == Token(BOUNCES, DELIVERY, 101)
    assert report.found_in == "returned-headers"


def test_addresses_and_diagnostics_stay_out_of_repr_and_so_out_of_logs():
    report = classify_file("postfix-5.1.1.eml", None)
    assert "jan.peeters" not in repr(report)
    assert "User unknown" not in repr(report)


def test_an_auto_reply_sent_to_the_unsubscribe_address_unsubscribes_nobody():
    raw = (CORPUS / "ooo-auto-submitted.eml").read_bytes()
    report = classify(raw, envelope=Token(UNSUBSCRIBE, DELIVERY, 105), codec=CODEC)
    assert report.kind == Kind.AUTO_REPLY


def test_a_garbled_mail_to_the_unsubscribe_address_still_unsubscribes():
    report = classify(b"\xff\xfe\x00garbage", envelope=Token(UNSUBSCRIBE, DELIVERY, 5))
    assert report.kind == Kind.UNSUBSCRIBE and report.token == Token(UNSUBSCRIBE, DELIVERY, 5)


def test_foreign_message_ids_are_not_ours():
    report = classify_file("never-sent.eml", None)
    assert report.message_id is None and not report.identified


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.1.1", "550 5.1.1 User unknown", Kind.HARD_BOUNCE),
        ("5.1.2", "Host or domain name not found", Kind.HARD_BOUNCE),
        ("5.1.8", "Sender address rejected: Domain not found", Kind.POLICY),
        ("5.2.2", "552 Mailbox full", Kind.SOFT_BOUNCE),
        ("4.2.2", "452 Mailbox full", Kind.SOFT_BOUNCE),
        ("4.7.1", "450 Greylisted, try again later", Kind.SOFT_BOUNCE),
        ("5.7.1", "554 5.7.1 Message rejected as spam", Kind.POLICY),
        ("5.7.26", "550 5.7.26 Unauthenticated email is not accepted (DMARC)", Kind.POLICY),
        ("5.1.1", "550 5.1.1 blocked using zen.spamhaus.org", Kind.POLICY),
        ("5.6.0", "Content rejected", Kind.POLICY),
        ("5.0.0", "550 Requested action not taken: mailbox unavailable", Kind.HARD_BOUNCE),
        ("5.0.0", "550 Sorry", Kind.UNKNOWN),
        (None, "550 5.1.1 <x@example.net>: Recipient address rejected", Kind.HARD_BOUNCE),
        (None, "451 Temporary local problem", Kind.SOFT_BOUNCE),
        (None, "550 Access denied", Kind.UNKNOWN),
        (None, "", Kind.UNKNOWN),
        ("2.0.0", "250 OK", Kind.DELIVERED),
    ],
)
def test_status_mapping_is_conservative(status, diagnostic, kind):
    assert from_status(status, diagnostic) == kind


def dsn(action: str, status: str | None, diagnostic: str | None) -> bytes:
    fields = ["Final-Recipient: rfc822; someone@example.net", f"Action: {action}"]
    if status:
        fields.append(f"Status: {status}")
    if diagnostic:
        fields.append(f"Diagnostic-Code: smtp; {diagnostic}")
    return (
        "From: MAILER-DAEMON@example.net\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nNot delivered.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; example.net\n\n"
        + "\n".join(fields)
        + "\n\n--b--\n"
    ).encode()


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "kind"),
    [
        ("failed", "5.1.1", None, Kind.HARD_BOUNCE),
        ("delayed", "4.4.1", None, Kind.DELAYED),
        ("delivered", "2.0.0", None, Kind.DELIVERED),
        ("relayed", "2.0.0", None, Kind.DELIVERED),
        ("expanded", "2.0.0", None, Kind.DELIVERED),
        ("failed", None, "550 5.1.1 No such user", Kind.HARD_BOUNCE),
        ("failed", None, "550 rejected", Kind.UNKNOWN),
        ("failed", "4.4.7", "Message expired", Kind.SOFT_BOUNCE),
        ("failed (permanent)", "5.2.2 (mailbox full)", None, Kind.SOFT_BOUNCE),
    ],
)
def test_dsn_action_and_status_decide(action, status, diagnostic, kind):
    assert classify(dsn(action, status, diagnostic)).kind == kind


@pytest.mark.parametrize(
    ("feedback_type", "kind"),
    [
        ("abuse", Kind.COMPLAINT),
        ("fraud", Kind.COMPLAINT),
        ("auth-failure", Kind.POLICY),
        ("virus", Kind.POLICY),
        ("not-spam", Kind.UNKNOWN),
        ("other", Kind.UNKNOWN),
    ],
)
def test_feedback_types(feedback_type, kind):
    raw = (
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nA report.\n\n"
        "--b\nContent-Type: message/feedback-report\n\n"
        f"Feedback-Type: {feedback_type}\nUser-Agent: Test/1.0\nVersion: 1\n\n--b--\n"
    ).encode()
    report = classify(raw)
    assert (report.kind, report.feedback_type) == (kind, feedback_type)


@pytest.mark.parametrize(
    "subject",
    [
        "Afwezig",
        "Automatisch antwoord: Nieuwsbrief",
        "Out of Office: Newsletter",
        "Automatic reply: Newsletter",
        "Réponse automatique : Lettre",
        "Abwesenheitsnotiz: Newsletter",
        "Automatische Antwort: Newsletter",
    ],
)
def test_out_of_office_subjects(subject):
    message = EmailMessage()
    message["From"] = "someone@example.net"
    message["Subject"] = subject
    message.set_content("I am away.")
    assert classify(message.as_bytes()).kind == Kind.AUTO_REPLY


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Auto-Submitted", "auto-replied"),
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
        ("Precedence", "auto_reply"),
        ("X-Autoreply", "yes"),
    ],
)
def test_auto_reply_headers(header, value):
    message = EmailMessage()
    message["From"] = "someone@example.net"
    message["Subject"] = "Re: Newsletter"
    message[header] = value
    message.set_content("Thanks.")
    assert classify(message.as_bytes()).kind == Kind.AUTO_REPLY


def test_a_plain_reply_is_unknown():
    message = EmailMessage()
    message["From"] = "someone@example.net"
    message["Subject"] = "Re: Newsletter"
    message.set_content("Thanks, but which date was it again?")
    report = classify(message.as_bytes())
    assert report.kind == Kind.UNKNOWN and not report.acted_on


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_any_bytes_classify_without_raising(raw):
    report = classify(raw, codec=CODEC)
    assert isinstance(report.kind, Kind)
    if report.kind == Kind.UNKNOWN:
        assert not report.acted_on


FIELD_NAMES = st.sampled_from(
    ["Action", "Status", "Diagnostic-Code", "Final-Recipient", "Feedback-Type", "X-Junk"]
)
FIELD_VALUES = st.one_of(
    st.sampled_from(["failed", "delayed", "5.1.1", "4.4.1", "smtp; 550 5.7.1 spam", "abuse"]),
    st.text(max_size=60),
)
PART_TYPES = st.sampled_from(
    [
        "message/delivery-status",
        "message/global-delivery-status",
        "message/feedback-report",
        "text/rfc822-headers",
        "message/rfc822",
        "message/global",
        "text/plain",
    ]
)
ENCODINGS = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-bogus"])


@st.composite
def reportish(draw) -> bytes:
    """A multipart/report-like message with random parts, fields, encodings and junk."""
    lines = [
        f"From: {draw(st.sampled_from(['MAILER-DAEMON@x.example', 'a@b.example', '']))}",
        f"Subject: {draw(st.text(max_size=40))}",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
        "",
    ]
    for _ in range(draw(st.integers(0, 4))):
        lines += [
            "--B",
            f"Content-Type: {draw(PART_TYPES)}",
            f"Content-Transfer-Encoding: {draw(ENCODINGS)}",
            "",
        ]
        for _ in range(draw(st.integers(0, 3))):
            for _ in range(draw(st.integers(0, 5))):
                lines.append(f"{draw(FIELD_NAMES)}: {draw(FIELD_VALUES)}")
            lines.append("")
    if draw(st.booleans()):
        lines.append("--B--")
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reportish(), st.sampled_from([None, Token(BOUNCES, DELIVERY, 1)]))
def test_report_shaped_messages_classify_without_raising(raw, token):
    report = classify(raw, envelope=token, codec=CODEC)
    assert isinstance(report.kind, Kind)
    assert report.token == token or token is None


def test_a_global_dsn_keeps_its_utf8_recipient_and_diagnostics_come_unfolded():
    (recipient,) = classify_file("global-dsn-relayed.eml", None).recipients
    assert recipient.address == "山田@example.jp"
    report = classify_file("office365-5.1.10.eml", None)
    assert "\n" not in report.diagnostic and "Recipient not found by SMTP" in report.diagnostic


def test_a_raw_utf8_out_of_office_subject_is_read_as_utf8():
    raw = "From: a@example.fr\nSubject: Réponse automatique\n\nAbsente.\n".encode()
    assert classify(raw).kind == Kind.AUTO_REPLY


def test_a_vacation_message_quoting_a_bounce_phrase_is_no_bounce():
    message = EmailMessage()
    message["From"] = "someone@example.net"
    message["Subject"] = "Out of Office"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("I am away; my old address user unknown@example.net does not exist.")
    assert classify(message.as_bytes()).kind == Kind.AUTO_REPLY
