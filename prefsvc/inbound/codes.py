"""What a delivery status means for the person: RFC 3463 codes, SMTP replies and diagnostics.

The peers' trackers show the costly mistakes: a policy refusal (5.7.1, a blocklisted IP) taken
for a dead mailbox, one soft bounce blocking a person. So the mapping leans the safe way:

* only codes about the recipient's mailbox or domain make a hard bounce (5.1.x except the
  sender-side 5.1.7/5.1.8, 5.1.10 null MX, 5.2.1 disabled, 5.4.4 no such domain, 5.7.13
  account disabled);
* a full mailbox (5.2.2) and every 4.x.x are soft: the score decides, never one report;
* 5.7.x, content (5.6.x), size and a diagnostic naming a blocklist, spam, DMARC/SPF/DKIM or
  "policy" are the sender's reputation, not the person's fault; such words win even over
  a 5.1.x, because a wrongly buried address costs more than one missed hard bounce;
* when the code is missing or says nothing (5.0.0, a bare 550), only an unmistakable phrase
  decides; otherwise it stays unknown.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Kind(StrEnum):
    """What a report is, as far as the person and our reputation go."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    POLICY = "policy"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto_reply"
    DELAYED = "delayed"  # the MTA still tries: the final report counts, not this warning
    DELIVERED = "delivered"  # Action delivered/relayed/expanded: no bounce at all
    UNKNOWN = "unknown"


# The order in which one report's recipients decide the report's own kind.
PRECEDENCE = (
    Kind.COMPLAINT,
    Kind.UNSUBSCRIBE,
    Kind.HARD_BOUNCE,
    Kind.POLICY,
    Kind.SOFT_BOUNCE,
    Kind.DELAYED,
    Kind.DELIVERED,
    Kind.AUTO_REPLY,
    Kind.UNKNOWN,
)

ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
BASIC = re.compile(r"(?<!\d)([245]\d\d)(?:[ -]|$)")


class _Phrases:
    """Phrases of one meaning in lower-cased text: substring cues first, then the pattern.

    Python's re tries every alternative at every position (70 µs for one diagnostic, most of a
    millisecond for a bounce's text); most texts hold none of the cues, which ``in`` rules out
    at C speed. Every alternative of the pattern contains one of the cues.
    """

    def __init__(self, cues: str, pattern: str) -> None:
        self._cues = tuple(cues.split("|"))
        self._regex = re.compile(pattern)

    def search(self, lowered: str) -> re.Match[str] | None:
        if any(cue in lowered for cue in self._cues):
            return self._regex.search(lowered)
        return None


_POLICY = _Phrases(
    (
        "spam|barracuda|sorbs|block|black|dnsbl|rbl|reputation|dmarc|spf|dkim|polic|"
        "banned|sender address|authori|unauthenticated|too many|rate limit|rejected|virus|"
        "malware|phish"
    ),
    r"spamhaus|spamcop|barracuda|sorbs|block ?list|black ?list|\bdnsbl|\brbl\b|\bspam"
    r"|reputation|\bdmarc\b|\bspf\b|\bdkim\b|\bpolicy\b|policies|\bblocked\b|\bbanned\b"
    r"|sender address rejected|not authori[sz]ed to send|unauthenticated|too many|rate limit"
    r"|content rejected|message rejected|virus|malware|phish",
)
_SOFT = _Phrases(
    "full|quota|storage|try again|temporar",
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the |storage )?quota"
    r"|insufficient (?:system )?storage|out of storage|try again later|temporar",
)
_HARD = _Phrases(
    (
        "unknown|no such|not found|unavailable|does not exist|unrouteable|no mailbox|"
        "invalid|disabled|recipientnotfound"
    ),
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|unknown recipient"
    r"|recipient (?:address )?(?:not found|unknown)"
    r"|mailbox (?:not found|unavailable|does not exist)"
    r"|(?:address|account|mailbox|recipient) does not exist|does not exist here"
    r"|unrouteable address|no mailbox here|invalid (?:recipient|mailbox)|addressee unknown"
    r"|account (?:has been )?disabled|recipientnotfound|host or domain name not found",
)

_HARD_CODES = frozenset({"5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1", "5.4.4"})
_HARD_CODES |= {"5.7.13"}
_SENDER_CODES = frozenset({"5.1.7", "5.1.8", "5.2.3", "5.3.4"})


def enhanced_code(text: str | None) -> str | None:
    """Return the first RFC 3463 code (``5.1.1``) in ``text``, normalised, or ``None``."""
    if not text:
        return None
    found = ENHANCED.search(text)
    if found is None:
        return None
    return ".".join(str(int(number)) for number in found.groups())


def basic_code(text: str | None) -> int | None:
    """Return the first SMTP reply code (``550``) in a diagnostic, or ``None``."""
    if not text:
        return None
    found = BASIC.search(text)
    return int(found.group(1)) if found else None


def from_action(action: str | None) -> Kind | None:
    """Return the kind an RFC 3464 ``Action`` decides alone, if it does."""
    if action in ("delivered", "relayed", "expanded"):
        return Kind.DELIVERED
    if action == "delayed":
        return Kind.DELAYED
    return None


def from_status(status: str | None, diagnostic: str = "") -> Kind:
    """Return the kind of a failure with RFC 3463 ``status`` (or none) and its diagnostic.

    Without a status the diagnostic's own enhanced code is used, then its basic SMTP code
    (4xx soft; a bare 5xx only with a telling phrase).
    """
    diagnostic = diagnostic or ""
    if status is None:
        status = enhanced_code(diagnostic)
    if status is None:
        basic = basic_code(diagnostic)
        if basic is not None and 400 <= basic < 500:
            return Kind.SOFT_BOUNCE
        if basic is not None and 200 <= basic < 300:
            return Kind.DELIVERED
        return _from_words(diagnostic)
    klass, subject, _detail = status.split(".")
    if klass == "2":
        return Kind.DELIVERED
    if klass == "4":
        return Kind.SOFT_BOUNCE
    if status in _SENDER_CODES or subject in ("6", "7") and status != "5.7.13":
        return Kind.POLICY
    if _POLICY.search(diagnostic.lower()):
        return Kind.POLICY
    if status in _HARD_CODES or subject == "1":
        return Kind.HARD_BOUNCE
    if status == "5.2.2" or subject in ("2", "3", "4"):
        return Kind.SOFT_BOUNCE
    return _from_words(diagnostic)


def telling_line(text: str) -> int | None:
    """Return the index (in ``text.split("\\n")``) of the first line with a deciding phrase."""
    lowered = text.lower()
    found = [m.start() for m in (p.search(lowered) for p in (_POLICY, _SOFT, _HARD)) if m]
    return lowered.count("\n", 0, min(found)) if found else None


def _from_words(diagnostic: str) -> Kind:
    """Decide from the text alone; anything less than unmistakable stays unknown."""
    lowered = diagnostic.lower()
    if _POLICY.search(lowered):
        return Kind.POLICY
    if _SOFT.search(lowered):
        return Kind.SOFT_BOUNCE
    if _HARD.search(lowered):
        return Kind.HARD_BOUNCE
    return Kind.UNKNOWN


def strongest(kinds: list[Kind]) -> Kind:
    """Return the kind that decides a report with several recipients."""
    return min(kinds, key=PRECEDENCE.index, default=Kind.UNKNOWN)
