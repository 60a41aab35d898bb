"""Message bytes: what mail clients and receiving servers parse, and DKIM that verifies."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from prefsvc.mail.messages import DkimSigner, MessageBuilder
from prefsvc.mail.rendering import Rendered
from prefsvc.settings import Settings

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
UNSUB = "https://news.example.org/u/eyJjIjoiYWJjIiwidCI6M30.sig-_x"
LIST_ID = "Haven <haven.news.example.org>"
RENDERED = Rendered(
    subject="Nieuwe opleidingen voor Ana",
    html='<html><body><p style="color:red">Beste Ana,</p>\n<p>Prijs: € 120</p></body></html>',
    text="Beste Ana,\n\nPrijs: € 120\n\n-- \nUitschrijven: " + UNSUB + "\n",
)


def parse(data: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(data)


def content(part: EmailMessage) -> str:
    """Decoded body with LF line ends: the parser keeps the wire's CRLF in bodies."""
    return part.get_content().replace("\r\n", "\n")


def campaign(
    builder: MessageBuilder | None = None,
    *,
    to: str = "ana@example.org",
    rendered: Rendered = RENDERED,
    list_id: str = LIST_ID,
) -> tuple[str, bytes]:
    builder = builder or MessageBuilder(
        from_addr="Opleidingen <news@example.org>", msgid_domain="example.org"
    )
    return builder.campaign_message(
        to=to, rendered=rendered, unsubscribe_url=UNSUB, list_id=list_id, now=NOW
    )


def generic(
    *, from_addr: str, to: str, rendered: Rendered, message_id: str, list_id: str = LIST_ID
) -> EmailMessage:
    """The same message built the ordinary way, as the reference."""
    message = EmailMessage()
    message["From"] = from_addr
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(NOW)
    message["Message-ID"] = message_id
    message["List-Id"] = list_id
    message["List-Unsubscribe"] = f"<{UNSUB}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return parse(message.as_bytes(policy=policy.SMTP))  # CRLF, as smtplib sends it


HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)


def assert_same_message(ours: EmailMessage, reference: EmailMessage) -> None:
    for name in HEADERS:
        assert str(ours[name]) == str(reference[name]), name
    assert ours.get_content_type() == reference.get_content_type() == "multipart/alternative"
    our_parts, their_parts = list(ours.iter_parts()), list(reference.iter_parts())
    assert [p.get_content_type() for p in our_parts] == ["text/plain", "text/html"]
    assert [p.get_content_type() for p in their_parts] == ["text/plain", "text/html"]
    for mine, theirs in zip(our_parts, their_parts, strict=True):
        assert mine.get_content_charset() == "utf-8"
        # EmailMessage.set_content always ends a body with a newline; ours keeps it as given
        assert content(mine).rstrip("\n") == content(theirs).rstrip("\n")


def test_campaign_message_parses_as_alternative_text_then_html():
    _, data = campaign()
    message = parse(data)
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert plain.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert content(plain) == RENDERED.text
    assert content(html) == RENDERED.html
    assert message.defects == [] and plain.defects == [] and html.defects == []


def test_campaign_headers_match_a_generically_built_message():
    message_id, data = campaign()
    message = parse(data)
    assert message["List-Unsubscribe"] == f"<{UNSUB}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] == message_id
    reference = generic(
        from_addr="Opleidingen <news@example.org>",
        to="ana@example.org",
        rendered=RENDERED,
        message_id=message_id,
    )
    assert_same_message(message, reference)


def test_non_ascii_subject_sender_name_and_list_name_decode_correctly():
    rendered = Rendered(
        subject="Événement: Zoë, François & Noël — € 5 korting 🎉 " + "lang " * 30 + "!",
        html=RENDERED.html,
        text=RENDERED.text,
    )
    from_addr = "Opleidingen Ç€ë 📬 <news@example.org>"
    list_id = "Haven & Logistiek — Anvers <haven.news.example.org>"
    builder = MessageBuilder(from_addr=from_addr, msgid_domain="example.org")
    message_id, data = campaign(builder, rendered=rendered, list_id=list_id)
    message = parse(data)
    assert message["Subject"] == rendered.subject
    assert message["From"].addresses[0].display_name == "Opleidingen Ç€ë 📬"
    assert message["From"].addresses[0].addr_spec == "news@example.org"
    assert message["List-Id"] == list_id
    reference = generic(
        from_addr=from_addr,
        to="ana@example.org",
        rendered=rendered,
        message_id=message_id,
        list_id=list_id,
    )
    assert_same_message(message, reference)


def test_list_id_keeps_its_identifier_readable_when_the_name_is_not_ascii():
    """Mail clients and filters match the ``<slug.host>`` part literally (RFC 2919)."""
    _, data = campaign(list_id="Café Opleidingen <cafe.news.example.org>")
    raw = re.search(rb"^List-Id:(.*?)\r\n(?![ \t])", data, re.M | re.S).group(1)
    assert raw.rstrip().endswith(b"<cafe.news.example.org>")


def test_long_lines_and_dots_and_from_lines_round_trip_exactly():
    html = (
        "<p>" + "x" * 5000 + "</p>\n.\n. punt\n..twee\nFrom the editor\nFrom: nobody\n"
        "tab\tend \n trailing   \n" + "é" * 3000 + "\n"
    )
    text = ".\nFrom here\n" + "ü" * 2000 + "\n"
    _, data = campaign(rendered=Rendered(subject="s", html=html, text=text))
    plain, html_part = parse(data).iter_parts()
    assert content(html_part) == html
    assert content(plain) == text


BODY_LINES = st.lists(
    st.lists(st.sampled_from(["a", " ", "\t", "=", ".", "é", "€", "x" * 90, "\x00", "From "])).map(
        "".join
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(BODY_LINES)
def test_any_body_text_decodes_back_exactly_with_short_lines(lines):
    """Bodies are encoded line by line (cached): every text must still decode to itself."""
    text = "\n".join(lines)
    _, data = campaign(rendered=Rendered(subject="s", html=text + "<p>", text=text))
    plain, html_part = parse(data).iter_parts()
    assert content(plain) == text and content(html_part) == text + "<p>"
    body = data.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_every_line_is_short_and_ends_with_crlf():
    rendered = Rendered(subject="é" * 300, html="<p>" + "x é" * 4000 + "</p>", text="y" * 5000)
    _, data = campaign(rendered=rendered)
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in lines) <= 998


def test_message_ids_are_unique():
    builder = MessageBuilder(from_addr="news@example.org", msgid_domain="example.org")
    ids = {campaign(builder)[0] for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"<[0-9a-f]{32}@example\.org>", i) for i in ids)


def test_transactional_message_has_no_unsubscribe_headers():
    builder = MessageBuilder(from_addr="news@example.org", msgid_domain="example.org")
    message_id, data = builder.transactional_message(
        to="ana@example.org", subject="Uw aanmeldlink", text="Klik hier: https://x/s/1\n", now=NOW
    )
    message = parse(data)
    assert "List-Unsubscribe" not in message and "List-Unsubscribe-Post" not in message
    assert message["Message-ID"] == message_id
    assert message.get_content_type() == "text/plain"
    assert content(message) == "Klik hier: https://x/s/1\n"


def test_idn_recipient_domain_is_idna_encoded():
    _, data = campaign(to="ana@bücher.example")
    assert b"\r\nTo: ana@xn--bcher-kva.example\r\n" in data
    assert parse(data)["To"].addresses[0].domain == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "to, ascii_form",
    [("ana@faß.de", "ana@xn--fa-hia.de"), ("ana@ςίσυφος.gr", "ana@xn--kxa6ahcdmh.gr")],
)
def test_idn_domain_takes_the_idna_2008_form_email_validator_gives_it(to, ascii_form):
    """IDNA 2003 (Python's ``idna`` codec) would send ana@faß.de to fass.de: another domain."""
    from email_validator import validate_email

    checked = validate_email(to, check_deliverability=False)
    assert checked.ascii_email == ascii_form
    _, data = campaign(to=checked.normalized)
    assert b"\r\nTo: " + ascii_form.encode("ascii") + b"\r\n" in data


@pytest.mark.parametrize(
    "to, header",
    [("zoë@example.org", "zoë@example.org"), ("zoë@bücher.example", "zoë@xn--bcher-kva.example")],
)
def test_utf8_local_part_goes_into_the_to_header_as_utf8(to, header):
    """RFC 6532: with SMTPUTF8 a header may hold UTF-8; the domain still takes its IDNA form."""
    builder = MessageBuilder(from_addr="news@example.org", msgid_domain="example.org")
    _, data = campaign(builder, to=to)
    _, notice = builder.transactional_message(to=to, subject="Uw link", text="Hier\n", now=NOW)
    for raw in (data, notice):
        assert b"\r\nTo: " + header.encode("utf-8") + b"\r\n" in raw
        assert str(parse(raw)["To"]) == header
    message = parse(data)
    plain, html = message.iter_parts()
    assert content(plain) == RENDERED.text and content(html) == RENDERED.html
    assert message.defects == []


# --- DKIM -------------------------------------------------------------------------------


def rsa_key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _pem(key), b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def ed25519_key() -> tuple[bytes, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _pem(key), b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


KEYS = {"rsa": rsa_key, "ed25519": ed25519_key}


@pytest.fixture(params=["rsa", "ed25519"])
def signed(request):
    """A signed campaign message and the DNS answer that verifies it."""
    pem, txt = KEYS[request.param]()
    signer = DkimSigner(domain="example.org", selector="mail2026", private_key_pem=pem)
    builder = MessageBuilder(
        from_addr="Opleidingen <news@example.org>", msgid_domain="example.org", dkim=signer
    )
    rendered = Rendered(
        subject="Événement  voor\tZoë 🎉",
        html="<p>Beste  Zoë,\t</p>\n\n<p>" + "lang " * 400 + "</p>   \n\n\n",
        text="Beste Zoë,  \n\n\n",
    )
    _, data = campaign(builder, rendered=rendered)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return txt if name == b"mail2026._domainkey.example.org." else None

    return data, dns


def test_signed_message_verifies_with_dkimpy(signed):
    data, dns = signed
    assert dkim.verify(data, dnsfunc=dns)


def test_signature_covers_the_headers_the_contract_names(signed):
    data, _ = signed
    header = parse(data)["DKIM-Signature"]
    tags = dict(
        t.strip().split("=", 1) for t in re.sub(r"\s+", "", str(header)).split(";") if t.strip()
    )
    covered = set(tags["h"].lower().split(":"))
    assert covered >= {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
    assert tags["d"] == "example.org" and tags["s"] == "mail2026"


@pytest.mark.parametrize(
    "old, new",
    [
        (b"lang lang", b"lang LANG"),
        (b"Subject: ", b"Subject: Re: "),
        (b"/u/eyJjIjoiYWJjIiwidCI6M30", b"/u/eyJjIjoiYWJjIiwidCI6M31"),
    ],
    ids=["body", "subject", "unsubscribe-url"],
)
def test_tampering_breaks_the_signature(signed, old, new):
    data, dns = signed
    assert old in data
    assert not dkim.verify(data.replace(old, new, 1), dnsfunc=dns)


ED25519_PEM, ED25519_TXT = ed25519_key()
ED25519_BUILDER = MessageBuilder(
    from_addr="news@example.org",
    msgid_domain="example.org",
    dkim=DkimSigner(domain="example.org", selector="s1", private_key_pem=ED25519_PEM),
)


@settings(max_examples=150, deadline=None)
@given(BODY_LINES)
def test_any_body_text_is_signed_so_that_dkimpy_verifies(lines):
    """The relaxed body is put together from cached lines: it must be what dkimpy works out."""
    text = "\n".join(lines)
    _, data = campaign(ED25519_BUILDER, rendered=Rendered(subject="s", html=text, text=text))
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: ED25519_TXT)


def test_whitespace_changes_in_transit_keep_a_relaxed_signature_valid(signed):
    data, dns = signed
    head, _, body = data.partition(b"\r\n\r\n")
    head = head.replace(b"Subject: ", b"Subject:   ", 1)
    assert dkim.verify(head + b"\r\n\r\n" + body + b"\r\n\r\n", dnsfunc=dns)


def test_message_to_a_utf8_address_is_signed_so_that_dkimpy_verifies():
    pem, txt = ed25519_key()
    signer = DkimSigner(domain="example.org", selector="mail2026", private_key_pem=pem)
    builder = MessageBuilder(from_addr="news@example.org", msgid_domain="example.org", dkim=signer)
    _, data = campaign(builder, to="zoë@bücher.example")
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: txt)


def _settings(tmp_path: Path, **dkim_settings) -> Settings:
    return Settings(
        instance_path=tmp_path,
        database_url="sqlite://",
        broker_url=None,
        mail_url=f"maildir:{tmp_path}",
        base_url="https://news.example.org",
        secret_keys=("k" * 24,),
        suppression_key="s" * 24,
        mail_from="news@example.org",
        **dkim_settings,
    )


def test_signer_from_settings_is_none_when_dkim_is_off(tmp_path: Path):
    assert DkimSigner.from_settings(_settings(tmp_path)) is None


def test_signer_from_settings_reads_the_key_file(tmp_path: Path):
    pem, txt = ed25519_key()
    (tmp_path / "dkim.pem").write_bytes(pem)
    signer = DkimSigner.from_settings(
        _settings(
            tmp_path,
            dkim_domain="example.org",
            dkim_selector="s1",
            dkim_key_file=tmp_path / "dkim.pem",
        )
    )
    builder = MessageBuilder(from_addr="news@example.org", msgid_domain="example.org", dkim=signer)
    _, data = campaign(builder)
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: txt)


# --- VERP (issue 17): mailto unsubscribe and Feedback-ID, signed -----------------------------

MAILTO = "unsubscribe+" + "a" * 40 + "@bounces.example.org"


def test_verp_headers_are_added_and_signed():
    pem, txt = rsa_key()
    signer = DkimSigner(domain="example.org", selector="mail2026", private_key_pem=pem)
    builder = MessageBuilder(
        from_addr="Opleidingen <news@example.org>", msgid_domain="example.org", dkim=signer
    )
    _, data = builder.campaign_message(
        to="ana@example.org",
        rendered=RENDERED,
        unsubscribe_url=UNSUB,
        list_id=LIST_ID,
        now=NOW,
        unsubscribe_mailto=MAILTO,
        feedback_id="12:haven:campaign:example.org",
    )
    message = parse(data)
    assert message["List-Unsubscribe"] == f"<{UNSUB}>, <mailto:{MAILTO}>"
    assert message["Feedback-ID"] == "12:haven:campaign:example.org"
    signed = re.sub(r"\s+", "", str(message["DKIM-Signature"]))
    assert "feedback-id" in signed.split("h=")[1].split(";")[0].split(":")
    dns = {b"mail2026._domainkey.example.org.": txt}
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: dns.get(name))


def test_without_verp_the_message_is_what_it_was():
    builder = MessageBuilder(from_addr="Opleidingen <news@example.org>", msgid_domain="example.org")
    message_id, before = builder.campaign_message(
        to="ana@example.org", rendered=RENDERED, unsubscribe_url=UNSUB, list_id=LIST_ID, now=NOW
    )
    other_id, after = builder.campaign_message(
        to="ana@example.org",
        rendered=RENDERED,
        unsubscribe_url=UNSUB,
        list_id=LIST_ID,
        now=NOW,
        unsubscribe_mailto=None,
        feedback_id=None,
    )
    assert after.replace(other_id.encode(), message_id.encode()) == before
    assert b"Feedback-ID" not in before and b"mailto:" not in before
