"""Opening links from mail: one-click unsubscribe (RFC 8058), undo, preference and sign-in links.

Links name a contact by its random public id; a link whose contact is gone, erased or
anonymised, or whose topic no longer exists, is as invalid as a forged one (``InvalidToken``,
never a reason), so a link never tells anyone whether an address is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Select, Text, bindparam, cast, func, insert, literal, or_, select
from sqlalchemy.orm import Session, scoped_session

from prefsvc.consent import changes as consent
from prefsvc.errors import InvalidToken
from prefsvc.mail import notices
from prefsvc.mail.tokens import Signer, SigninClaim
from prefsvc.models import (
    LANGUAGES,
    Contact,
    ContactStatus,
    Language,
    Subscription,
    SubscriptionStatus,
    Topic,
    UTCDateTime,
    in_language,
)
from prefsvc.queue import outbox
from prefsvc.recipient.acknowledgements import OPTOUT
from prefsvc.recipient.centre import refuse_if_suppressed

# Whom a link may still open: not erased or anonymised, an address still held.
LINKABLE = (ContactStatus.ACTIVE, ContactStatus.UNSUBSCRIBED)
_CONTACTS = Contact.__table__
# OR of equalities rather than IN: an IN list is expanded again at every execution.
_LINKABLE = (
    or_(*(_CONTACTS.c.status == status for status in LINKABLE)),
    _CONTACTS.c.email.is_not(None),
)


def _linkable(session: Session, public_id: str) -> Contact:
    contact = session.scalar(select(Contact).where(Contact.public_id == public_id, *_LINKABLE))
    if contact is None:
        raise InvalidToken()
    return contact


def open_unsubscribe_link(session: Session, signer: Signer, token: str) -> tuple[Contact, Topic]:
    """Return the contact and topic an unsubscribe token names, or raise InvalidToken."""
    claim = signer.read_unsubscribe(token)
    topic = session.get(Topic, claim.topic_id)
    if topic is None:
        raise InvalidToken()
    return _linkable(session, claim.public_id), topic


@dataclass(frozen=True)
class UnsubscribeLink:
    """What the ``/u`` pages need of a valid unsubscribe link, read in one statement.

    Plain values, not ORM objects: mail scanners GET every link and mailbox providers POST
    one-click unsubscribes by the hundred a second while a campaign goes out.
    """

    contact_id: int
    public_id: str
    language: Language
    objected: bool
    topic_id: int
    topic_names: dict[str, str | None]  # per language; see ``topic_name_in``
    subscribed: bool

    def topic_name_in(self, language: str) -> str:
        """Return the topic's name as a reader of ``language`` sees it (``Topic.name_in``)."""
        return in_language(self.topic_names, str(language)) or ""


def _link_query() -> Select:
    contacts_, topics, subscriptions = _CONTACTS, Topic.__table__, Subscription.__table__
    return (
        select(
            contacts_.c.id,
            contacts_.c.language,
            contacts_.c.status,
            *(topics.c[f"name_{lang}"] for lang in LANGUAGES),
            subscriptions.c.status.label("subscription"),
        )
        .select_from(contacts_)
        .join(topics, topics.c.id == bindparam("topic_id"))
        .outerjoin(
            subscriptions,
            (subscriptions.c.contact_id == contacts_.c.id)
            & (subscriptions.c.topic_id == topics.c.id),
        )
        .where(
            contacts_.c.public_id == bindparam("public_id"),
            *_LINKABLE,
        )
    )


_LINK = _link_query()  # built once: the /u pages are the busiest ones


def read_unsubscribe_link(session: Session, signer: Signer, token: str) -> UnsubscribeLink:
    """Return what an unsubscribe token names, or raise InvalidToken (as ``open_…`` does)."""
    claim = signer.read_unsubscribe(token)
    row = session.execute(_LINK, {"public_id": claim.public_id, "topic_id": claim.topic_id}).first()
    if row is None:
        raise InvalidToken()
    return _unsubscribe_link(claim.public_id, claim.topic_id, row)


def _link_and_leave_query() -> Select:
    """Read the link, leave, and hold the acknowledgement if anything changed: one statement.

    ``leaving`` calls a volatile function and is read twice, so PostgreSQL runs it once; the
    INSERT in ``held`` runs whether or not the outer query reads it.
    """
    link = _LINK.subquery("link")
    leaving = select(link, consent.leave_on_server(link.c.id).label("left")).cte("leaving")
    held = (
        insert(outbox.OUTBOX)
        .from_select(
            ["actor", "args", "held_at"],
            select(
                literal(notices.ACTOR),
                func.json_build_array(  # the args of notices.hold: [kind, contact_id, params]
                    cast(literal(OPTOUT), Text),
                    leaving.c.id,
                    bindparam("acknowledgement", type_=JSON),
                ),
                bindparam("now", type_=UTCDateTime()),
            ).where(leaving.c.left),
        )
        .cte("held")
    )
    return select(leaving).add_cte(held)


_LINK_AND_LEAVE = _link_and_leave_query()


def leave_by_link(
    session: Session, signer: Signer, token: str, *, channel: str, now: datetime, today: date
) -> tuple[UnsubscribeLink, bool]:
    """Leave the topic an unsubscribe token names; return the link and whether anything changed.

    The one-click POST. When something changed, the opt-out acknowledgement is held in the
    outbox in the same transaction (``notices.hold``): no broker call while the mailbox
    provider waits. On PostgreSQL the link is read, left and acknowledged in one statement. When the
    session has no transaction open, that statement commits by itself (autocommit): the
    ledger head is then locked only while the server runs it, not until this process, busy
    among many threads, gets round to sending COMMIT (unsubscribes arriving by the hundred
    a second queued behind that lock). Otherwise, and on SQLite (read, then
    ``consent.leave``), it runs in the session's transaction and the caller commits. The
    link shows the state before leaving.
    """
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        link = read_unsubscribe_link(session, signer, token)
        left = leave_topic(
            session, link.contact_id, link.topic_id, channel=channel, now=now, today=today
        )
        return link, left
    claim = signer.read_unsubscribe(token)
    params = consent.leave_parameters(claim.topic_id, channel=channel, now=now, today=today) | {
        "public_id": claim.public_id,
        "acknowledgement": _acknowledgement(claim.topic_id),
    }
    if _in_transaction(session):  # it may hold locks the statement needs: run inside it
        row = session.execute(_LINK_AND_LEAVE, params).first()
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            row = connection.execute(_LINK_AND_LEAVE, params).first()
    if row is None:
        raise InvalidToken()
    return _unsubscribe_link(claim.public_id, claim.topic_id, row), row.left


def leave_topic(
    session: Session, contact_id: int, topic_id: int, *, channel: str, now: datetime, today: date
) -> bool:
    """Leave one topic and hold the opt-out acknowledgement when anything changed.

    What the one-click POST does once its link is read (on any database); a ``mailto:``
    unsubscribe (``prefsvc.inbound.policy``) does the same for the delivery it names.
    """
    left = consent.leave(session, contact_id, topic_id, channel=channel, now=now, today=today)
    if left:
        notices.hold(session, OPTOUT, contact_id, _acknowledgement(topic_id), now=now)
    return left


def _acknowledgement(topic_id: int) -> dict[str, Any]:
    return {"topic_ids": [topic_id]}


def _in_transaction(session: Session | scoped_session) -> bool:
    return (session() if isinstance(session, scoped_session) else session).in_transaction()


def _unsubscribe_link(public_id: str, topic_id: int, row: Any) -> UnsubscribeLink:
    return UnsubscribeLink(
        contact_id=row.id,
        public_id=public_id,
        language=row.language,
        objected=row.status is not ContactStatus.ACTIVE,
        topic_id=topic_id,
        topic_names={lang: row._mapping[f"name_{lang}"] for lang in LANGUAGES},
        subscribed=row.subscription is SubscriptionStatus.SUBSCRIBED,
    )


def open_preferences_link(session: Session, signer: Signer, token: str) -> Contact:
    """Return the contact a preference-centre token names, or raise InvalidToken."""
    return _linkable(session, signer.read_preferences(token))


def open_signin_link(
    session: Session, signer: Signer, token: str, *, now: datetime
) -> tuple[Contact, SigninClaim]:
    """Return the contact of a sign-in token under 24 hours old, or raise InvalidToken."""
    claim = signer.read_signin(token, now=now)
    return _linkable(session, claim.public_id), claim


def undo_unsubscribe(
    session: Session,
    contact: Contact,
    topic: Topic,
    *,
    suppression_key: str,
    now: datetime,
    today: date,
) -> bool:
    """Put the contact back on the topic they just left; refuse after an objection."""
    refuse_if_suppressed(session, contact, suppression_key)
    return consent.subscribe(session, contact, topic, channel="undo", now=now, today=today)
