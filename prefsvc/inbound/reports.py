"""Reading the parts of a returned message: delivery status, feedback report, returned headers.

Everything here takes what the stdlib ``email`` parser (compat32: the fastest, and the form
flufl.bounce expects) makes of a message and returns plain values; a malformed part yields
nothing rather than an error, so one bad field never hides the rest of a report. Values come
folded, in odd charsets or absurdly long: ``text`` unfolds, caps and stringifies them once.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import Compat32

from prefsvc.inbound.verp import Token, VerpCodec

# A report's machine-readable parts come first; the returned original (our newsletter, perhaps
# with images) can be cut without losing anything the classifier reads.
MAX_BYTES = 1 << 20
MAX_FIELD = 2000
MAX_PARTS = 64

STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
FEEDBACK_TYPE = "message/feedback-report"
RETURNED_TYPES = frozenset(
    {"text/rfc822-headers", "message/global-headers", "message/rfc822", "message/global"}
)


class _Policy(Compat32):
    """compat32, but raw 8-bit header bytes read as UTF-8 (RFC 6532) instead of mojibake.

    compat32 wraps such a value in a ``Header`` whose ``str`` replaces every byte; SMTPUTF8
    mail and RFC 6533 reports carry UTF-8 addresses and subjects as they are.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        if not isinstance(value, str):
            return super().header_fetch_parse(name, value)
        return value if value.isascii() else _utf8(value)  # no surrogates left: no Header


def _utf8(value: str) -> str:
    """Return ``value`` with the raw bytes the parser kept as surrogates read as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return value


POLICY = _Policy()
_HEADER_PARSER = BytesHeaderParser(policy=POLICY)
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
_OUR_MESSAGE_ID = re.compile(r"<([0-9a-f]{32})@([A-Za-z0-9.-]{1,253})>")
_MAILTO = re.compile(r"mailto:([^>?,\s]{1,320})", re.IGNORECASE)
_HEADER_LINE = re.compile(
    r"^(message-id|return-path|list-unsubscribe|feedback-id)[ \t]*:[ \t]*(?:\r?\n[ \t]+)?(\S.*)$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass
class Parts:
    """The parts of a message that matter, found in one walk that stops at returned messages."""

    status: list[Message] = field(default_factory=list)
    feedback: list[Message] = field(default_factory=list)
    returned: list[Message] = field(default_factory=list)
    texts: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class Ids:
    """Ids of our own found in a message; each names what was sent, the address never does."""

    token: Token | None = None
    message_id: str | None = None
    feedback_id: str | None = None


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw[:MAX_BYTES], policy=POLICY)


def collect(message: Message) -> Parts:
    """Sort the parts of ``message`` without descending into a returned original."""
    parts = Parts()
    stack = [message]
    seen = 0
    while stack and seen < MAX_PARTS:
        part = stack.pop(0)
        seen += 1
        ctype = part.get_content_type()
        if ctype in STATUS_TYPES:
            parts.status.append(part)
        elif ctype == FEEDBACK_TYPE:
            parts.feedback.append(part)
        elif ctype in RETURNED_TYPES:
            inner = part.get_payload()
            if isinstance(inner, list):  # compat32 parses any message/* type as a message
                parts.returned.extend(inner[:1])
            else:
                parts.returned.append(_headers_of_text(part))
        elif part.is_multipart():
            payload = part.get_payload()
            stack.extend(sub for sub in payload if isinstance(sub, Message))
        elif ctype == "text/plain" or part is message:
            parts.texts.append(part)
    return parts


def text(value: object) -> str:
    """Return a header or field value unfolded, capped and stripped ('' when absent)."""
    if value is None:
        return ""
    try:
        return " ".join(str(value)[: MAX_FIELD * 2].split())[:MAX_FIELD]
    except (LookupError, UnicodeError, ValueError):
        return ""


def header(message: Message, name: str) -> str:
    return text(message.get(name))


def decoded_header(message: Message, name: str) -> str:
    """Return an RFC 2047-decoded header (a subject in any charset), or its raw text."""
    raw = header(message, name)
    try:
        return str(make_header(decode_header(raw)))[:MAX_FIELD]
    except (LookupError, UnicodeError, ValueError, TypeError):
        return raw


def body_text(part: Message, limit: int = 100_000) -> str:
    """Return a leaf part's decoded text (transfer encoding and charset undone), capped."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[:limit].decode(charset, "replace")
    except LookupError:
        return payload[:limit].decode("utf-8", "replace")


def field_blocks(part: Message) -> list[dict[str, str]]:
    """Return the field blocks of a delivery-status or feedback-report part, names lower-cased.

    compat32 hands ``message/delivery-status`` over as a list of header blocks, while other
    ``message/*`` types come as one message whose body holds any further blocks (RFC 6533's
    global delivery status among them).
    """
    payload = part.get_payload()
    if isinstance(payload, str):
        return _text_blocks(body_text(part))
    blocks: list[dict[str, str]] = []
    for block in payload[:MAX_PARTS]:
        if not isinstance(block, Message):
            continue
        fields: dict[str, str] = {}
        for name, value in block.items():
            fields.setdefault(name.strip().lower(), text(value))
        blocks.append(fields)
        if part.get_content_type() != "message/delivery-status" and not block.is_multipart():
            blocks.extend(_text_blocks(body_text(block)))
    return blocks


def _text_blocks(body: str) -> list[dict[str, str]]:
    blocks = []
    for chunk in _BLANK_LINE.split(body, maxsplit=MAX_PARTS)[:MAX_PARTS]:
        fields: dict[str, str] = {}
        name = None
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and name is not None:
                fields[name] = (fields[name] + " " + " ".join(line.split()))[:MAX_FIELD]
                continue
            key, colon, value = line.partition(":")
            if colon and key.strip() and " " not in key.strip():
                name = key.strip().lower()
                fields.setdefault(name, " ".join(value.split())[:MAX_FIELD])
        if fields:
            blocks.append(fields)
    return blocks


def _headers_of_text(part: Message) -> Message:
    payload = part.get_payload(decode=True)
    return _HEADER_PARSER.parsebytes(payload if isinstance(payload, bytes) else b"")


def our_message_id(value: str, domain: str | None) -> str | None:
    """Return the first Message-ID in ``value`` shaped like ours (and at ``domain`` if given)."""
    for found in _OUR_MESSAGE_ID.finditer(value):
        if domain is None or found.group(2).lower() == domain.lower():
            return found.group(0)
    return None


def token_in(value: str, codec: VerpCodec | None) -> Token | None:
    """Return the verified token of a VERP address in a Return-Path or mailto: list."""
    if codec is None or "+" not in value:
        return None
    candidates = _MAILTO.findall(value) or [value]
    for candidate in candidates:
        token = codec.parse(candidate)
        if token is not None:
            return token
    return None


def ids_in_headers(headers: Message, codec: VerpCodec | None, domain: str | None) -> Ids:
    """Return our ids in a returned message's headers (Return-Path, List-Unsubscribe, ...)."""
    token = token_in(header(headers, "Return-Path"), codec) or token_in(
        header(headers, "List-Unsubscribe"), codec
    )
    return Ids(
        token=token,
        message_id=our_message_id(header(headers, "Message-ID"), domain),
        feedback_id=header(headers, "Feedback-ID") or None,
    )


def ids_in_text(body: str, codec: VerpCodec | None, domain: str | None) -> Ids:
    """Return our ids from header lines quoted inline (Exim, qmail copy the original as text)."""
    token = message_id = feedback_id = None
    for found in _HEADER_LINE.finditer(body):
        name, value = found.group(1).lower(), found.group(2)
        if name == "message-id":
            message_id = message_id or our_message_id(value, domain)
        elif name == "feedback-id":
            feedback_id = feedback_id or value.strip()[:MAX_FIELD]
        else:
            token = token or token_in(value, codec)
    return Ids(token=token, message_id=message_id, feedback_id=feedback_id)


def merge(*found: Ids) -> Ids:
    """Return the first of each id over several sources, in the order given."""
    return Ids(
        token=next((ids.token for ids in found if ids.token), None),
        message_id=next((ids.message_id for ids in found if ids.message_id), None),
        feedback_id=next((ids.feedback_id for ids in found if ids.feedback_id), None),
    )
