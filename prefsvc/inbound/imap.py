"""``prefsvc inbound imap``: read returned mail from a mailbox, for those without an own MTA.

A hosted mailbox (the one ``BOUNCE_DOMAIN``'s MX delivers to, or a provider's feedback-loop
address) is polled over IMAP. Each message goes through the same ``intake.receive`` as LMTP;
what was taken is then MOVED to the processed folder, never deleted (listmonk #1185: a scanner
deleting unrelated mail). A message whose intake failed (the database away) stays where it is
and is tried again at the next poll; a message nobody can read is still kept and moved, as
``unknown: ignored``, so the team can look at it.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

SCHEMES = {"imap": (False, False), "imap+starttls": (False, True), "imaps": (True, False)}
DEFAULT_PORTS = {"imap": 143, "imap+starttls": 143, "imaps": 993}
BATCH = 50  # messages fetched at once: memory stays bounded however full the mailbox is
# Without the MOVE extension (RFC 6851) a processed message is copied and marked with this
# keyword rather than expunged: nothing is ever deleted.
PROCESSED_KEYWORD = b"$PrefsvcProcessed"
IMAPError = imaplib.IMAP4.error  # imapclient's errors (login refused, NO/BAD replies) are these

# Take one raw message (the envelope recipient is read from its delivery headers); raise to
# leave it in the mailbox for the next poll.
Receive = Callable[[bytes], object]


@dataclass(frozen=True)
class Mailbox:
    """Where the returned mail is: ``imaps://user:pass@host[:port]/FOLDER?processed=FOLDER``."""

    host: str
    port: int
    username: str
    password: str
    folder: str = "INBOX"
    processed: str = "Processed"
    tls: bool = True
    starttls: bool = False

    @classmethod
    def from_url(cls, url: str) -> Mailbox:
        """Parse the URL; raise ValueError naming what is wrong (never echoing the password)."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError("must start with imaps://, imap+starttls:// or imap://")
        if not parts.hostname:
            raise ValueError("names no host")
        if not parts.username or parts.password is None:
            raise ValueError("must give user:password@ before the host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        query = parse_qs(parts.query)
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        processed = query.get("processed", ["Processed"])[-1].strip()
        if not processed or processed == folder:
            raise ValueError("processed= must name a folder other than the one polled")
        tls, starttls = SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username),
            password=unquote(parts.password),
            folder=folder,
            processed=processed,
            tls=tls,
            starttls=starttls,
        )

    def __repr__(self) -> str:  # the password never reaches a log line
        return f"Mailbox({self.username}@{self.host}:{self.port}/{self.folder})"


@dataclass
class PollReport:
    taken: int = 0  # received and moved to the processed folder
    left: int = 0  # intake failed: left in place for the next poll


def poll(
    mailbox: Mailbox, receive: Receive, *, ssl_context: ssl.SSLContext | None = None
) -> PollReport:
    """Take every message in the folder once: receive it, then move it to the processed one."""
    from imapclient import IMAPClient

    report = PollReport()
    client = IMAPClient(
        mailbox.host, port=mailbox.port, ssl=mailbox.tls, ssl_context=ssl_context, timeout=60
    )
    try:
        if mailbox.starttls:
            client.starttls(ssl_context)
        client.login(mailbox.username, mailbox.password)
        if not client.folder_exists(mailbox.processed):
            client.create_folder(mailbox.processed)
        can_move = client.has_capability("MOVE")
        client.select_folder(mailbox.folder)
        criteria = ["ALL"] if can_move else ["UNKEYWORD", PROCESSED_KEYWORD]
        for batch in _batches(client.search(criteria)):
            done = []
            for uid, data in client.fetch(batch, ["BODY.PEEK[]"]).items():
                raw = data.get(b"BODY[]")
                try:
                    receive(raw or b"")
                except Exception as exc:  # noqa: BLE001 - left in place, tried again next poll
                    log.warning(
                        "returned message not taken, left in the mailbox: %s", type(exc).__name__
                    )
                    report.left += 1
                    continue
                done.append(uid)
            if not done:
                continue
            if can_move:
                client.move(done, mailbox.processed)
            else:
                client.copy(done, mailbox.processed)
                client.add_flags(done, [PROCESSED_KEYWORD])
            report.taken += len(done)
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            pass
    return report


def reason(exc: BaseException) -> str:
    """A one-line reason for a failed poll, for the operator (the server's words, or errno's)."""
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
        return exc.strerror or type(exc).__name__
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:200] or type(exc).__name__


def _batches(uids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(uids), BATCH):
        yield uids[start : start + BATCH]
