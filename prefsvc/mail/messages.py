"""Message bytes for campaigns and transactional mail, built without the generic email machinery.

Building an ``EmailMessage`` and calling ``as_bytes()`` costs about 2.3 ms per message, ten
times what smtplib spends sending it. Here everything that is the same for every recipient
(From, MIME structure, part headers, boundary) is encoded once per builder, and each recipient's
bodies go through ``binascii.b2a_qp`` (C). The result parses back with the ``email`` package
into the same structure and headers (tests check this).

DKIM signing uses dkimpy's canonicalisation rules but OpenSSL (``cryptography``) for the
signature itself: RSA-2048 in ≈ 0.2 ms instead of dkimpy's ≈ 6.6 ms pure-Python RSA.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path

import idna
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from prefsvc.mail.rendering import Rendered

CRLF = b"\r\n"
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
)
# Relaxed canonicalisation turns runs of white space into one space; single spaces are already
# canonical, so match only what changes (matching every space made signing 10x slower).
_WSP = re.compile(rb" [ \t]+|\t[ \t]*")


def _header_value(value: str) -> bytes:
    """Encode a header value: as is when short ASCII, else RFC 2047 folded at 76 columns."""
    value = value.replace("\r", " ").replace("\n", " ")
    if value.isascii() and len(value) < 900:
        return value.encode("ascii")
    return Header(value, "utf-8").encode(linesep="\r\n", maxlinelen=76).encode("ascii")


def _list_id_value(value: str) -> bytes:
    """Encode a List-Id: only the description may be RFC 2047 encoded, never ``<id>`` (RFC 2919)."""
    description, bracket, identifier = value.rpartition("<")
    if not bracket or description.isascii():
        return _header_value(value)
    return _header_value(description.strip()) + b" <" + identifier.encode("ascii")


def ascii_address(address: str) -> str:
    """Return the address with an IDNA-encoded domain, as SMTP and headers need it.

    A non-ASCII local part stays as it is: only SMTPUTF8 (RFC 6531) can carry it.
    """
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    return f"{local}@{_idna_domain(domain)}"


@lru_cache(maxsize=1024)
def _idna_domain(domain: str) -> str:
    """Return the A-label form as email-validator computes it: IDNA 2008, UTS 46 mapping.

    Python's ``idna`` codec is IDNA 2003, which maps ``faß.de`` to ``fass.de``: another
    domain. Cached: a campaign's internationalised domains repeat (≈ 13 µs each otherwise).
    """
    return idna.encode(domain, uts46=True).decode("ascii")


def _address_value(address: str) -> bytes:
    """Encode an address for a header: raw UTF-8 if the local part is not ASCII (RFC 6532)."""
    if address.isascii():
        return address.encode("ascii")
    return ascii_address(address).encode("utf-8")


# Quoted-printable encodes each line on its own, and a campaign's lines are the same for every
# recipient but a few (name, links): caching encoded lines makes a 75 KB body 0.1 ms, not 0.9.
# Each entry also keeps the line's DKIM relaxed form (RFC 6376 §3.4.4, which works line by
# line), so a signed message's canonical body is a join, not a 0.1 ms pass over 75 KB.
_QP_LINES: dict[str, tuple[bytes, bytes]] = {}
_QP_CACHE_SIZE = 10_000


def _qp_line(line: str) -> tuple[bytes, bytes]:
    """Encode one line (soft line breaks as CRLF) with its relaxed form; cache both."""
    encoded = binascii.b2a_qp(line.encode("utf-8"), quotetabs=False, istext=True)
    encoded = encoded.replace(b"\n", CRLF)
    # Relaxed form: runs of white space become one space. No line ends in white space to
    # strip, because quoted-printable writes trailing white space as =20 or =09.
    relaxed = _WSP.sub(b" ", encoded) if b"\t" in encoded or b"  " in encoded else encoded
    if len(_QP_LINES) >= _QP_CACHE_SIZE:
        _QP_LINES.clear()
    found = _QP_LINES[line] = (encoded, relaxed)
    return found


def _qp_lines(text: str) -> list[tuple[bytes, bytes]]:
    """Quoted-printable lines of ``text`` (joined by CRLF they decode to it exactly)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    cache = _QP_LINES
    return [cache.get(line) or _qp_line(line) for line in text.split("\n")]


class DkimSigner:
    """Signs finished messages (relaxed/relaxed); the private key is loaded once."""

    def __init__(self, *, domain: str, selector: str, private_key_pem: bytes) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = b"rsa-sha256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithm = b"ed25519-sha256"
        else:
            raise ValueError("DKIM key must be RSA or Ed25519")
        self._key = key
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")

    @classmethod
    def from_settings(cls, settings) -> DkimSigner | None:
        if not settings.dkim_enabled:
            return None
        return cls(
            domain=settings.dkim_domain,
            selector=settings.dkim_selector,
            private_key_pem=Path(settings.dkim_key_file).read_bytes(),
        )

    def sign(
        self, message: bytes, *, timestamp: int | None = None, relaxed_body: bytes | None = None
    ) -> bytes:
        """Return the message with a DKIM-Signature header in front.

        ``relaxed_body``, when the caller has it, is the body already in relaxed form (before
        the trailing empty lines are dropped); otherwise it is worked out from the message.
        """
        head, _, body = message.partition(CRLF + CRLF)
        headers = _split_headers(head)
        relaxed = _relaxed_body(body) if relaxed_body is None else _without_empty_end(relaxed_body)
        body_hash = base64.b64encode(hashlib.sha256(relaxed).digest())
        present = {name.lower() for name, _ in headers}
        signed = [h for h in SIGNED_HEADERS if h in present]
        tags = [
            b"v=1",
            b"a=" + self.algorithm,
            b"c=relaxed/relaxed",
            b"d=" + self.domain,
            b"s=" + self.selector,
        ]
        if timestamp is not None:
            tags.append(b"t=" + str(timestamp).encode())
        tags += [b"h=" + ":".join(signed).encode(), b"bh=" + body_hash, b"b="]
        value = b"; ".join(tags)
        by_name: dict[str, bytes] = {}
        for name, raw in headers:  # each signed header occurs once; keep the last (bottom-up)
            by_name[name.lower()] = raw
        data = b"".join(_relaxed_header(by_name[h]) + CRLF for h in signed)
        data += _relaxed_header(b"DKIM-Signature: " + value)
        digest_input = data
        if self.algorithm == b"rsa-sha256":
            signature = self._key.sign(digest_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = self._key.sign(hashlib.sha256(digest_input).digest())
        b64 = base64.b64encode(signature)
        folded = CRLF.join(b"\t" + b64[i : i + 72] for i in range(0, len(b64), 72))
        header = b"DKIM-Signature: " + value.replace(b"; ", b";" + CRLF + b"\t") + CRLF + folded
        return header + CRLF + message


def _split_headers(head: bytes) -> list[tuple[str, bytes]]:
    """Split a header block into (name, raw header with continuation lines)."""
    result: list[tuple[str, bytes]] = []
    for line in head.split(CRLF):
        if line[:1] in (b" ", b"\t") and result:
            name, raw = result[-1]
            result[-1] = (name, raw + CRLF + line)
        elif line:
            result.append((line.split(b":", 1)[0].decode("ascii").strip(), line))
    return result


def _relaxed_header(raw: bytes) -> bytes:
    name, _, value = raw.partition(b":")
    value = _WSP.sub(b" ", value.replace(CRLF, b"")).strip(b" ")
    return name.strip().lower() + b":" + value


def _relaxed_body(body: bytes) -> bytes:
    """Canonicalise a body (RFC 6376 §3.4.4); quick substring checks skip the common no-op."""
    if b"\t" in body or b"  " in body:
        body = _WSP.sub(b" ", body)
    if b" \r\n" in body:
        body = CRLF.join(line.rstrip(b" ") for line in body.split(CRLF))
    return _without_empty_end(body)


def _without_empty_end(body: bytes) -> bytes:
    body = body.rstrip(CRLF)  # no trailing empty lines
    return body + CRLF if body else b""


class MessageBuilder:
    """Builds message bytes with CRLF line endings; constant parts encoded once."""

    def __init__(
        self, *, from_addr: str, msgid_domain: str, dkim: DkimSigner | None = None
    ) -> None:
        name, address = parseaddr(from_addr)
        self._from = b"From: " + formataddr((name, ascii_address(address)), charset="utf-8").encode(
            "ascii"
        )
        self._msgid_domain = msgid_domain
        self._dkim = dkim
        self._boundary = ("=_prefsvc_" + secrets.token_hex(12)).encode("ascii")
        self._multipart = b'Content-Type: multipart/alternative; boundary="' + self._boundary + b'"'
        self._plain_part = (
            b"--"
            + self._boundary
            + CRLF
            + b'Content-Type: text/plain; charset="utf-8"'
            + CRLF
            + b"Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
        )
        self._html_part = (
            CRLF
            + b"--"
            + self._boundary
            + CRLF
            + b'Content-Type: text/html; charset="utf-8"'
            + CRLF
            + b"Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
        )
        self._close = CRLF + b"--" + self._boundary + b"--" + CRLF

    def _message_id(self) -> str:
        return f"<{secrets.token_hex(16)}@{self._msgid_domain}>"

    def _assemble(self, headers: list[bytes], text: str, html: str | None) -> bytes:
        # The MIME part headers hold no runs of white space: they are their own relaxed form.
        if html is None:
            head = headers + [
                b"MIME-Version: 1.0",
                b'Content-Type: text/plain; charset="utf-8"',
                b"Content-Transfer-Encoding: quoted-printable",
            ]
            parts = [(b"", _qp_lines(text), b"")]
        else:
            head = headers + [b"MIME-Version: 1.0", self._multipart]
            parts = [
                (self._plain_part, _qp_lines(text), b""),
                (self._html_part, _qp_lines(html), self._close),
            ]
        body = b"".join(
            before + CRLF.join([encoded for encoded, _ in lines]) + after
            for before, lines, after in parts
        )
        message = CRLF.join(head) + CRLF + CRLF + body
        if self._dkim is None:
            return message
        relaxed = b"".join(
            before + CRLF.join([canonical for _, canonical in lines]) + after
            for before, lines, after in parts
        )
        return self._dkim.sign(message, relaxed_body=relaxed)

    def campaign_message(
        self,
        *,
        to: str,
        rendered: Rendered,
        unsubscribe_url: str,
        list_id: str,
        now: datetime,
        unsubscribe_mailto: str | None = None,
        feedback_id: str | None = None,
    ) -> tuple[str, bytes]:
        """Return (Message-ID, bytes) of one recipient's campaign message (RFC 8058 headers).

        ``unsubscribe_mailto`` (an ``unsubscribe+TOKEN@`` address) follows the https URL in
        ``List-Unsubscribe``; ``feedback_id`` adds a signed ``Feedback-ID`` (Gmail's loop).
        Without them the bytes are what they were before VERP.
        """
        message_id = self._message_id()
        unsubscribe = b"List-Unsubscribe: <" + unsubscribe_url.encode("ascii") + b">"
        if unsubscribe_mailto is not None:
            unsubscribe += b", <mailto:" + unsubscribe_mailto.encode("ascii") + b">"
        headers = [
            self._from,
            b"To: " + _address_value(to),
            b"Subject: " + _header_value(rendered.subject),
            b"Date: " + format_datetime(now).encode("ascii"),
            b"Message-ID: " + message_id.encode("ascii"),
            b"List-Id: " + _list_id_value(list_id),
            unsubscribe,
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        ]
        if feedback_id is not None:
            headers.append(b"Feedback-ID: " + _header_value(feedback_id))
        return message_id, self._assemble(headers, rendered.text, rendered.html)

    def transactional_message(
        self,
        *,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        now: datetime,
        feedback_id: str | None = None,
    ) -> tuple[str, bytes]:
        """Return (Message-ID, bytes) of a service message (confirmation, sign-in link)."""
        message_id = self._message_id()
        headers = [
            self._from,
            b"To: " + _address_value(to),
            b"Subject: " + _header_value(subject),
            b"Date: " + format_datetime(now).encode("ascii"),
            b"Message-ID: " + message_id.encode("ascii"),
            b"Auto-Submitted: auto-generated",
        ]
        if feedback_id is not None:
            headers.append(b"Feedback-ID: " + _header_value(feedback_id))
        return message_id, self._assemble(headers, text, html)
