"""What a report that came back changes: for the person, for the campaign, for nobody.

* A hard bounce (a dead mailbox or domain) excludes the address from every audience at once
  (``bounced_at``, with the code and a short diagnostic on the contact) and is a ledger event
  (``bounced``, the code only), so webhooks and the changes feed carry it.
* Soft bounces (a full mailbox, any 4.x.x) score as in Mailman: +1 at most once a day, the
  score starting again after ``stale_days`` quiet days, and the address excluded as bounced
  when it reaches ``score_limit``. One soft bounce never blocks anyone (Mautic #9190).
* A complaint ("this is spam") is an objection to all marketing mail (ledger event, address
  suppressed, reason ``complained``) and is never answered with a mail.
* A ``mailto:`` unsubscribe does what the one-click POST does for that delivery's topic.
* A policy refusal (5.7.x, a blocklist) is the sender's reputation, not the person's fault:
  it is counted on the campaign (``Delivery.feedback``), never held against the contact.
* Anything else (auto-replies, delays, unknown) changes nothing; the caller keeps the report.

A synchronous 5xx at SMTP time goes through the same rules by its enhanced code
(``smtp_refusals``). Every rule is idempotent: acting twice on one fact changes nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    ScalarSelect,
    Select,
    String,
    any_,
    bindparam,
    func,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from prefsvc.consent import changes as consent
from prefsvc.consent import ledger
from prefsvc.inbound import guard
from prefsvc.inbound.codes import PRECEDENCE, Kind, enhanced_code, from_status, strongest
from prefsvc.inbound.verp import BOUNCES, DELIVERY, Token
from prefsvc.models import (
    Campaign,
    Contact,
    ContactStatus,
    Delivery,
    EventKind,
    InboundMessage,
    SuppressionReason,
    expire_held,
)
from prefsvc.recipient import links

CHANNEL_MAILTO = "mailto"
CHANNEL_COMPLAINT = "complaint"
CHANNEL_BOUNCE = "bounce"
MAX_DIAGNOSTIC = 300
# What a delivery's feedback column may say, strongest first (codes.PRECEDENCE order).
FEEDBACK = (Kind.COMPLAINT, Kind.HARD_BOUNCE, Kind.POLICY, Kind.SOFT_BOUNCE)


@dataclass(frozen=True)
class Rules:
    """The settings the policy reads (``BOUNCE_SCORE_LIMIT``, ``BOUNCE_STALE_DAYS``...)."""

    suppression_key: str
    score_limit: int = 5
    stale_days: int = 7

    @classmethod
    def from_settings(cls, settings) -> Rules:
        return cls(
            suppression_key=settings.suppression_key,
            score_limit=settings.bounce_score_limit,
            stale_days=settings.bounce_stale_days,
        )


@dataclass(frozen=True)
class Target:
    """Whom and what a report is about: a contact, and the delivery when it names one."""

    contact_id: int
    delivery_id: int | None = None
    topic_id: int | None = None
    feedback: str | None = None  # the delivery's feedback so far (``note_delivery``)


def resolve(session: Session, token: Token | None) -> Target | None:
    """Return what a verified token names, or None when that row is gone."""
    return look_up(session, token)[1]


def look_up(
    session: Session,
    token: Token | None,
    also: ScalarSelect | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[Any, Target | None]:
    """Return the value of the scalar subquery ``also`` (bound with ``params``) and what
    ``token`` names.

    One round trip for both: intake asks whether the report was seen before in the same
    statement. The statement is built once per ``also`` and kind, and runs on the session's
    connection: building and ORM-executing it cost more CPU than the database spends on it.
    """
    kind = token.kind if token is not None else None
    row = (
        session.connection()
        .execute(
            _look_up_statement(kind, also),
            {**(params or {}), "ident": token.ident if token is not None else None},
        )
        .one()
    )
    if token is None or row[1] is None:
        return row[0], None
    if kind == DELIVERY:
        return row[0], Target(row[1], token.ident, row[2], row[3])
    return row[0], Target(token.ident)


_STATEMENTS: dict[tuple[str | None, int], tuple[Any, Select]] = {}


def _look_up_statement(kind: str | None, also: ScalarSelect | None) -> Select:
    key = (kind, id(also))
    if key not in _STATEMENTS:
        ident = bindparam("ident", type_=Integer)
        columns: list[Any] = [also if also is not None else literal(None)]
        if kind == DELIVERY:
            of_delivery = Delivery.id == ident
            columns += [
                select(Delivery.contact_id).where(of_delivery).scalar_subquery(),
                select(Campaign.topic_id)
                .join(Delivery, Delivery.campaign_id == Campaign.id)
                .where(of_delivery)
                .scalar_subquery(),
                select(Delivery.feedback).where(of_delivery).scalar_subquery(),
            ]
        elif kind is not None:
            columns.append(select(Contact.id).where(Contact.id == ident).scalar_subquery())
        _STATEMENTS[key] = (also, select(*columns))  # ``also`` kept: its id stays its own
    return _STATEMENTS[key][1]


def look_up_all(
    session: Session, tokens: Sequence[Token | None], digests: Sequence[str]
) -> list[tuple[int | None, Target | None]]:
    """Return for each (token, digest) the id of the report kept with that digest before, if
    any, and what the token names: ``look_up`` for a whole group, in one round trip.

    A delivery's feedback is read before any of the group is acted on; ``note_delivery`` only
    ever strengthens it, so a stale read costs at most a statement that changes nothing.
    """
    delivery_ids = sorted({t.ident for t in tokens if t is not None and t.kind == DELIVERY})
    contact_ids = sorted({t.ident for t in tokens if t is not None and t.kind != DELIVERY})
    rows = session.connection().execute(
        _LOOK_UP_ALL[session.get_bind().dialect.name],
        {"digests": sorted(set(digests)), "deliveries": delivery_ids, "contacts": contact_ids},
    )
    seen: dict[str, int] = {}
    deliveries: dict[int, Target] = {}
    contacts: set[int] = set()
    for what, digest, ident, contact_id, topic_id, feedback in rows:
        if what == 0:
            seen[digest] = ident
        elif what == 1:
            deliveries[ident] = Target(contact_id, ident, topic_id, feedback)
        else:
            contacts.add(ident)
    found: list[tuple[int | None, Target | None]] = []
    for token, digest in zip(tokens, digests, strict=True):
        if token is None:
            target = None
        elif token.kind == DELIVERY:
            target = deliveries.get(token.ident)
        else:
            target = Target(token.ident) if token.ident in contacts else None
        found.append((seen.get(digest), target))
    return found


def _look_up_all_statement(among: Callable[[Any, str, Any], Any]):
    no_text = literal(None, String)
    no_number = literal(None, Integer)
    messages = InboundMessage.__table__
    return union_all(
        select(literal(0), messages.c.digest, messages.c.id, no_number, no_number, no_text).where(
            among(messages.c.digest, "digests", String)
        ),
        select(
            literal(1),
            no_text,
            Delivery.id,
            Delivery.contact_id,
            Campaign.topic_id,
            Delivery.feedback,
        )
        .join(Campaign, Delivery.campaign_id == Campaign.id)
        .where(among(Delivery.id, "deliveries", Integer)),
        select(literal(2), no_text, Contact.id, no_number, no_number, no_text).where(
            among(Contact.id, "contacts", Integer)
        ),
    )


# PostgreSQL takes each list as one array (``= ANY``): one statement text whatever the
# group's size, so it is prepared once; an expanding ``IN`` was compiled and converted anew
# for every group. SQLite has no arrays.
_LOOK_UP_ALL = {
    "postgresql": _look_up_all_statement(
        lambda column, name, type_: column == any_(bindparam(name, type_=ARRAY(type_)))
    ),
    "sqlite": _look_up_all_statement(
        lambda column, name, type_: column.in_(bindparam(name, expanding=True))
    ),
}


def act(
    session: Session,
    kind: Kind,
    target: Target,
    *,
    status: str | None,
    diagnostic: str,
    now: datetime,
    today: date,
    rules: Rules,
    noted: bool = False,
) -> str:
    """Apply the rule for ``kind`` to ``target``; return the outcome kept with the report.

    ``noted``: the delivery's feedback was already kept (``note_deliveries``, for a group).
    """
    if not noted and notes(kind, target):
        note_delivery(session, target.delivery_id, kind)
    if kind is Kind.HARD_BOUNCE:
        changed = hard_bounce(
            session, target.contact_id, status=status, diagnostic=diagnostic, now=now
        )
        return "bounced" if changed else "already_bounced"
    if kind is Kind.SOFT_BOUNCE:
        return soft_bounce(
            session,
            target.contact_id,
            status=status,
            diagnostic=diagnostic,
            now=now,
            today=today,
            rules=rules,
        )
    if kind is Kind.COMPLAINT:
        changed = complaint(session, target.contact_id, now=now, rules=rules)
        if target.delivery_id is not None:
            guard.after_complaint(session, target.delivery_id)  # past 0.3 %: the campaign pauses
        return "complained" if changed else "already_complained"
    if kind is Kind.UNSUBSCRIBE:
        if target.topic_id is None:
            return "ignored"  # a notice carries no List-Unsubscribe: nothing to leave
        left = unsubscribe(session, target.contact_id, target.topic_id, now=now, today=today)
        return "unsubscribed" if left else "already_unsubscribed"
    if kind is Kind.POLICY:
        return "policy_refusal"
    return "ignored"


def notes(kind: Kind, target: Target) -> bool:
    """Whether acting on ``kind`` strengthens the feedback kept on the target's delivery."""
    return kind in FEEDBACK and target.delivery_id is not None and _stronger(kind, target.feedback)


def note_deliveries(session: Session, noted: Sequence[tuple[int, Kind]]) -> None:
    """Keep the strongest feedback on each (delivery, kind) of a group, before acting on it.

    On PostgreSQL one statement for the group (``UPDATE … FROM unnest``), in id order; half
    of all reports note their delivery, and a statement each cost more than the report's
    other work on the database. Elsewhere one ``note_delivery`` each.
    """
    kinds: dict[int, list[Kind]] = {}
    for delivery_id, kind in noted:
        kinds.setdefault(delivery_id, []).append(kind)
    kind_of = {delivery_id: strongest(found) for delivery_id, found in kinds.items()}
    ids = sorted(kind_of)
    if not ids:
        return
    if session.get_bind().dialect.name != "postgresql":
        for delivery_id in ids:
            note_delivery(session, delivery_id, kind_of[delivery_id])
        return
    session.flush()
    session.connection().execute(_NOTE_ALL, {"ids": ids, "kinds": [kind_of[i].value for i in ids]})
    for delivery_id in ids:
        expire_held(session, Delivery, delivery_id)


# Only ever stronger: a kind's place in PRECEDENCE (a value outside it is never overwritten).
_RANKS = "ARRAY[" + ", ".join(f"'{kind.value}'" for kind in PRECEDENCE) + "]::varchar[]"
_NOTE_ALL = text(
    "UPDATE deliveries SET feedback = noted.kind"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:kinds AS varchar[])) AS noted(id, kind)"
    " WHERE deliveries.id = noted.id AND (deliveries.feedback IS NULL"
    f" OR array_position({_RANKS}, deliveries.feedback::varchar)"
    f" > array_position({_RANKS}, noted.kind))"
)


def _stronger(kind: Kind, current: str | None) -> bool:
    return current is None or PRECEDENCE.index(Kind(current)) > PRECEDENCE.index(kind)


def note_delivery(session: Session, delivery_id: int, kind: Kind) -> None:
    """Keep the strongest feedback on the delivery: the campaign's figures count it once."""
    session.flush()  # as ``session.execute`` would (autoflush); nothing pending costs nothing
    session.connection().execute(_NOTE[kind], {"delivery_id": delivery_id})
    expire_held(session, Delivery, delivery_id)


def _note_statement(kind: Kind):
    weaker = [other.value for other in PRECEDENCE[PRECEDENCE.index(kind) + 1 :]]
    return (
        update(Delivery)
        .where(
            Delivery.id == bindparam("delivery_id"),
            Delivery.feedback.is_(None) | Delivery.feedback.in_(weaker),
        )
        .values(feedback=kind.value)
    )


# Built once per kind: building and caching a statement cost more CPU than running it.
_NOTE = {kind: _note_statement(kind) for kind in FEEDBACK}


def _locked_contact(session: Session, contact_id: int) -> Contact | None:
    """Lock the contact row first, as every writer does (then the ledger head)."""
    contact = session.scalar(select(Contact).where(Contact.id == contact_id).with_for_update())
    if contact is None or contact.email is None:
        return None  # erased or anonymised since: nothing left to act on
    return contact


def hard_bounce(
    session: Session, contact_id: int, *, status: str | None, diagnostic: str, now: datetime
) -> bool:
    """Exclude the address as bounced; return False when it already was.

    One ``UPDATE`` (it locks the contact row, as every writer does first) rather than loading
    the contact: the address is put out of the diagnostic by the database, as ``_mark_bounced``
    does in Python. The ledger event names the contact by id, so the row is not loaded either.
    """
    code = (status or "")[:16] or None
    session.flush()  # as ``session.execute`` would (autoflush)
    bounced = (
        session.connection()
        .execute(
            _HARD_BOUNCE,
            {
                "contact_id": contact_id,
                "now": now,
                "code": code,
                "text": " ".join((diagnostic or "").split()),
            },
        )
        .first()
    )
    if bounced is None:
        return False
    expire_held(session, Contact, contact_id)
    ledger.append(
        session,
        contact_id,
        EventKind.BOUNCED,
        channel=CHANNEL_BOUNCE,
        now=now,
        detail={"code": code},
    )
    return True


_HARD_BOUNCE = (
    update(Contact)
    .where(
        Contact.id == bindparam("contact_id"),
        Contact.email.is_not(None),
        Contact.bounced_at.is_(None),
    )
    .values(
        bounced_at=bindparam("now", type_=Contact.bounced_at.type),
        bounce_code=bindparam("code", type_=String),
        bounce_diagnostic=func.nullif(
            func.substr(
                func.replace(bindparam("text", type_=String), Contact.email, "<recipient>"),
                1,
                MAX_DIAGNOSTIC,
            ),
            "",
        ),
    )
    .returning(Contact.id)
)


def soft_bounce(
    session: Session,
    contact_id: int,
    *,
    status: str | None,
    diagnostic: str,
    now: datetime,
    today: date,
    rules: Rules,
) -> str:
    """Add one to the soft-bounce score (once a day at most); exclude at the limit."""
    contact = _locked_contact(session, contact_id)
    if contact is None or contact.bounced_at is not None:
        return "already_bounced"
    last = contact.last_soft_bounce_on
    if last is not None and last >= today:
        return "scored_today"
    score = contact.bounce_score or 0
    if last is None or today - last > timedelta(days=rules.stale_days):
        score = 0  # quiet long enough: the address recovered, start again
    contact.bounce_score = score + 1
    contact.last_soft_bounce_on = today
    if contact.bounce_score >= rules.score_limit:
        _mark_bounced(session, contact, status, diagnostic, now, score=contact.bounce_score)
        return "bounced"
    return "scored"


def _mark_bounced(
    session: Session,
    contact: Contact,
    status: str | None,
    diagnostic: str,
    now: datetime,
    *,
    score: int | None = None,
) -> None:
    """Exclude the address and record why in the ledger (its append holds the webhook event).

    The ledger gets the status code (and the soft score that reached the limit), never the
    diagnostic: it may quote the address.
    """
    contact.bounced_at = now
    contact.bounce_code = (status or "")[:16] or None
    text = " ".join((diagnostic or "").split())
    if contact.email:
        text = text.replace(contact.email, "<recipient>")
    contact.bounce_diagnostic = text[:MAX_DIAGNOSTIC] or None
    detail: dict[str, object] = {"code": contact.bounce_code}
    if score is not None:
        detail["score"] = score
    consent.record(
        session, contact, EventKind.BOUNCED, channel=CHANNEL_BOUNCE, now=now, detail=detail
    )


def clear_bounce(session: Session, contact: Contact) -> bool:
    """Forget that the address bounced (staff know it works again); False when it had not.

    The soft score starts again from zero; the address is mailable again unless something
    else (a complaint, an objection, the window) stands in the way. The caller audits it.
    """
    locked = _locked_contact(session, contact.id)
    if locked is None:
        return False
    if locked.bounced_at is None and not locked.bounce_score and locked.bounce_code is None:
        return False
    locked.bounced_at = None
    locked.bounce_code = None
    locked.bounce_diagnostic = None
    locked.bounce_score = 0
    locked.last_soft_bounce_on = None
    return True


def complaint(session: Session, contact_id: int, *, now: datetime, rules: Rules) -> bool:
    """Treat a spam complaint as an objection to all marketing mail; no acknowledgement.

    Return False when the complaint was already recorded. Core statements (a locking read,
    then ``consent.object_by_id``): through the ORM a complaint cost four times a bounce.
    """
    session.flush()  # as ``session.execute`` would (autoflush)
    connection = session.connection()
    contact = connection.execute(_LOCK_FOR_COMPLAINT, {"contact_id": contact_id}).first()
    if contact is None or contact.email is None or contact.complained_at is not None:
        return False
    if contact.status not in (ContactStatus.ACTIVE, ContactStatus.UNSUBSCRIBED):
        return False
    connection.execute(_COMPLAINED, {"contact_id": contact_id, "now": now})
    expire_held(session, Contact, contact_id)
    if contact.status is ContactStatus.ACTIVE:
        consent.object_by_id(
            session,
            contact_id,
            contact.email,
            channel=CHANNEL_COMPLAINT,
            now=now,
            suppression_key=rules.suppression_key,
            reason=SuppressionReason.COMPLAINT,
            detail={"reason": "complained"},
        )
    return True


# Lock the contact row first, as every writer does (then the ledger head).
_LOCK_FOR_COMPLAINT = (
    select(Contact.email, Contact.status, Contact.complained_at)
    .where(Contact.id == bindparam("contact_id"))
    .with_for_update()
)
_COMPLAINED = (
    update(Contact)
    .where(Contact.id == bindparam("contact_id"))
    .values(complained_at=bindparam("now", type_=Contact.complained_at.type))
)


def unsubscribe(
    session: Session, contact_id: int, topic_id: int, *, now: datetime, today: date
) -> bool:
    """Leave the delivery's topic, as the one-click POST does (ledger event, acknowledgement)."""
    contact = _locked_contact(session, contact_id)
    if contact is None or contact.status not in links.LINKABLE:
        return False
    return links.leave_topic(
        session, contact_id, topic_id, channel=CHANNEL_MAILTO, now=now, today=today
    )


def smtp_refusals(
    session: Session,
    refusals: list[tuple[int, int | None, str | None]],
    *,
    now: datetime,
    today: date,
    rules: Rules,
) -> None:
    """Feed 5xx replies given at SMTP time (delivery id, code, text) through the same rules.

    The enhanced code decides (5.1.x hard, 5.7.x policy...); a bare 550 only with a telling
    phrase, as for a bounce report.
    """
    for delivery_id, code, said in refusals:
        if code is None or not 500 <= code < 600:
            continue
        said = said or ""
        kind = from_status(enhanced_code(said), f"{code} {said}")
        if kind not in FEEDBACK:
            continue
        target = resolve(session, Token(BOUNCES, DELIVERY, delivery_id))
        if target is not None:
            act(
                session,
                kind,
                target,
                status=enhanced_code(said),
                diagnostic=f"{code} {said}",
                now=now,
                today=today,
                rules=rules,
            )
