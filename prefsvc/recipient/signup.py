"""Public sign-up with double opt-in: a request, a confirmation mail, and the confirming POST.

The answer to a sign-up is the same for every address, known, new, suppressed or erased: the
request is recorded and its confirmation mail held in the notice outbox only where a mail is
due, so nobody learns from the form whether an address is on our list. Nothing is subscribed
until the person POSTs the confirmation from the link in that mail (a GET, which mail
scanners do, changes nothing); then the subscription is recorded in the ledger with basis
``consent``, the version of the consent text the form showed, and the time, and the window
anchor moves to that day. Requests keep only what the confirmation needs and are deleted
once confirmed or expired (``purge_expired``, run by the scheduler).

Bots are kept out without third parties: a honeypot field, a signed and time-stamped form
token (``form_token``: a form sent back too fast or too late is refused) and rate limits
per client and per address (in the views).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from prefsvc.addresses import normalise_email
from prefsvc.consent import changes, suppression
from prefsvc.errors import InvalidInput, InvalidToken, Suppressed
from prefsvc.mail import notices
from prefsvc.mail.notices import N_, Notice
from prefsvc.models import (
    LANGUAGES,
    Basis,
    Contact,
    ContactStatus,
    EventKind,
    Language,
    SignupRequest,
    Topic,
)
from prefsvc.settings import Settings

KIND = "signup_confirm"
CHANNEL = "signup"
# The version of the consent text the form shows (templates/recipient/signup.html, in every
# language): change it whenever that text changes, so the ledger says which text was agreed to.
CONSENT_VERSION = "2026-12-05"
FORM_SALT = "prefsvc.signup.form.v1"
CONFIRM_SALT = "prefsvc.signup.confirm.v1"
# A person needs a few seconds to fill in the form; a bot posting at once is refused, and so
# is a form kept open for more than a day (a token harvested once cannot be replayed forever).
FORM_MIN_AGE = timedelta(seconds=3)
FORM_MAX_AGE = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)
MAX_FIRST_NAME = 200
MAX_TOPICS = 50


class FormRefused(InvalidInput):
    """The form token is missing, forged, too fresh or too old: show a fresh form."""

    def __init__(self, problem: str) -> None:
        super().__init__("form_token", problem)


@dataclass(frozen=True)
class Signup:
    """A sign-up form, checked: what the confirmation will subscribe."""

    email: str
    first_name: str | None
    language: str
    topic_ids: tuple[int, ...]
    consent_version: str


def _serializer(keys: tuple[str, ...], salt: str, now: datetime | None = None) -> Any:
    if now is None:
        return URLSafeTimedSerializer(list(keys), salt=salt)
    stamp = int(now.timestamp())
    at_now = type("_SignedAt", (TimestampSigner,), {"get_timestamp": lambda self: stamp})
    return URLSafeTimedSerializer(list(keys), salt=salt, signer=at_now)


def _loads(keys: tuple[str, ...], salt: str, token: str) -> tuple[Any, datetime]:
    if not isinstance(token, str) or not token or len(token) > 400:
        raise InvalidToken()
    try:
        data, issued = _serializer(keys, salt).loads(token, return_timestamp=True)
    except (BadData, ValueError, TypeError):
        raise InvalidToken() from None
    return data, issued.astimezone(UTC)


def form_token(keys: tuple[str, ...], *, now: datetime) -> str:
    """Sign the moment a form was handed out, and the consent text version it shows."""
    return _serializer(keys, FORM_SALT, now).dumps([CONSENT_VERSION])


def check_form_token(keys: tuple[str, ...], token: str, *, now: datetime) -> str:
    """Return the consent version of a form filled in by a person; raise FormRefused if not.

    Refused: a token we did not sign, one sent back sooner than ``FORM_MIN_AGE`` after the
    form was handed out (no person is that fast), or later than ``FORM_MAX_AGE``.
    """
    try:
        data, issued = _loads(keys, FORM_SALT, token)
    except InvalidToken:
        raise FormRefused("is not one of ours") from None
    if now < issued + FORM_MIN_AGE:  # also a token from the future: one clock, ours
        raise FormRefused("came back too fast")
    if now > issued + FORM_MAX_AGE:
        raise FormRefused("is too old")
    if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], str)):
        raise FormRefused("is not one of ours")
    return data[0]


def parse(
    session: Session,
    *,
    email: Any,
    first_name: Any,
    language: Any,
    topics: Any,
    consent: Any,
    consent_version: str,
) -> Signup:
    """Check the fields of a sign-up form (any JSON or form values); raise InvalidInput."""
    if not isinstance(email, str):
        raise InvalidInput("email", "is missing")
    address = normalise_email(email)
    if first_name is not None and not isinstance(first_name, str):
        raise InvalidInput("first_name", "must be text")
    name = " ".join((first_name or "").split()) or None
    if name is not None and (len(name) > MAX_FIRST_NAME or any(ord(c) < 32 for c in name)):
        raise InvalidInput("first_name", f"must be at most {MAX_FIRST_NAME} characters")
    if language not in LANGUAGES:
        raise InvalidInput("language", "must be one of nl, fr, en")
    if consent not in (True, "yes", "on", "true", "1"):
        raise InvalidInput("consent", "is needed to subscribe")
    if isinstance(topics, str):
        topics = [topics]
    if (
        not isinstance(topics, list)
        or not topics
        or len(topics) > MAX_TOPICS
        or not all(isinstance(slug, str) for slug in topics)
    ):
        raise InvalidInput("topics", "choose at least one newsletter")
    slugs = set(topics)
    found = dict(session.execute(select(Topic.slug, Topic.id).where(Topic.slug.in_(slugs))).all())
    if set(found) != slugs:
        raise InvalidInput("topics", "names a newsletter that does not exist")
    return Signup(
        email=address,
        first_name=name,
        language=language,
        topic_ids=tuple(sorted(found.values())),
        consent_version=consent_version,
    )


def mail_due(session: Session, email: str, *, suppression_key: str) -> bool:
    """Tell whether a confirmation may go to this address at all.

    Not to a suppressed address (objection, erasure, complaint, hard bounce) nor to a contact
    that complained or bounced: the form answers them as anyone else, and mails nothing.
    """
    if suppression.is_suppressed(session, suppression_key, email):
        return False
    contact = session.scalar(select(Contact).where(Contact.email == email))
    if contact is None:
        return True
    return (
        contact.status is ContactStatus.ACTIVE
        and contact.complained_at is None
        and contact.bounced_at is None
    )


def request(
    session: Session, signup: Signup, *, now: datetime, valid: timedelta, suppression_key: str
) -> SignupRequest | None:
    """Record a sign-up and hold its confirmation mail; None when no mail is due.

    One open request per address: a new one replaces an older (its link stops working).
    """
    session.execute(delete(SignupRequest).where(SignupRequest.email == signup.email))
    if not mail_due(session, signup.email, suppression_key=suppression_key):
        return None
    pending = SignupRequest(
        email=signup.email,
        first_name=signup.first_name,
        language=Language(signup.language),
        topic_ids=list(signup.topic_ids),
        consent_version=signup.consent_version,
        requested_at=now,
        expires_at=now + valid,
    )
    session.add(pending)
    session.flush()
    notices.hold(session, KIND, None, {"request": pending.id}, now=now)
    return pending


def confirm_token(keys: tuple[str, ...], pending: SignupRequest, *, now: datetime) -> str:
    """Sign the confirmation link of a request (its random public id, never the address)."""
    return _serializer(keys, CONFIRM_SALT, now).dumps(pending.public_id)


def pending(session: Session, keys: tuple[str, ...], token: str, *, now: datetime) -> SignupRequest:
    """Return the open request a confirmation link names, or raise InvalidToken.

    An expired, confirmed, replaced or forged link is refused the same way.
    """
    public_id, issued = _loads(keys, CONFIRM_SALT, token)
    if not isinstance(public_id, str) or now < issued - CLOCK_SKEW:
        raise InvalidToken()
    found = session.scalar(select(SignupRequest).where(SignupRequest.public_id == public_id))
    if found is None or now >= found.expires_at:
        raise InvalidToken()
    return found


def confirm(
    session: Session,
    found: SignupRequest,
    *,
    now: datetime,
    today: date,
    suppression_key: str,
) -> Contact:
    """Subscribe the person of a confirmed request, with basis ``consent``; delete the request.

    A new address becomes a contact; a known one keeps its data and takes the name and
    language it gave. Every topic gets a ledger event naming the basis, the consent text
    version and when the request was made; a topic already received gets a ``renewed`` event
    instead, because the consent was given again. The window anchor moves to ``today``.
    Raises ``Suppressed`` when the address was suppressed since the request.
    """
    email = found.email
    contact = session.scalar(select(Contact).where(Contact.email == email).with_for_update())
    if not mail_due(session, email, suppression_key=suppression_key):
        session.delete(found)
        raise Suppressed("this address may not be subscribed")
    if contact is None:
        contact = Contact(email=email, window_anchor=today, language=found.language)
        session.add(contact)
    if found.first_name:
        contact.first_name = found.first_name
    contact.language = found.language
    contact.basis, contact.basis_date = Basis.CONSENT, today
    detail = {
        "basis": Basis.CONSENT.value,
        "consent_version": found.consent_version,
        "requested_at": found.requested_at.isoformat(),
    }
    topics = session.scalars(select(Topic).where(Topic.id.in_(found.topic_ids)).order_by(Topic.id))
    for topic in topics:
        if not changes.subscribe(
            session, contact, topic, channel=CHANNEL, now=now, today=today, detail=detail
        ):
            changes.record(
                session,
                contact,
                EventKind.RENEWED,
                channel=CHANNEL,
                now=now,
                topic=topic,
                detail=detail,
            )
    changes.touch_anchor(contact, today)
    session.delete(found)
    session.flush()
    return contact


def purge_expired(session: Session, *, now: datetime) -> int:
    """Delete the requests whose link has expired; return how many (the retention of sign-ups)."""
    result = session.execute(delete(SignupRequest).where(SignupRequest.expires_at <= now))
    return result.rowcount or 0


def build(
    session: Session, settings: Settings, params: dict[str, Any], *, now: datetime
) -> tuple[str, Notice] | None:
    """Build the confirmation mail of a request still open; None once it is gone."""
    found = session.get(SignupRequest, int(params.get("request", 0)))
    if found is None or now >= found.expires_at:
        return None
    language = found.language.value
    token = confirm_token(settings.secret_keys, found, now=found.requested_at)
    topic_names = [
        topic.name_in(language)
        for topic in session.scalars(
            select(Topic).where(Topic.id.in_(found.topic_ids)).order_by(Topic.id)
        )
    ]
    text = notices.render(
        "signup_confirm.txt",
        language,
        contact=found,  # the greeting reads ``first_name``, which the request has
        topics=topic_names,
        url=f"{settings.base_url}/s/confirm/{token}",
        hours=settings.signup_confirm_hours,
    )
    subject = notices.translate(language, N_("Confirm your subscription"))
    return found.email, Notice(subject=subject, text=text)
