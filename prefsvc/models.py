"""Typed SQLAlchemy 2.0 tables; states are enums checked by the database itself.

Tables and enums only: the rules live in the domain modules, and so do the triggers and
PL/pgSQL functions that enforce or speed up a rule (``prefsvc.consent.ledger``,
``prefsvc.consent.changes``), each beside its Python twin.

Timestamps are stored in UTC; calendar dates (anchors, pauses) are dates in ``TIMEZONE``.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Store naive UTC, hand back aware UTC: the same on SQLite and PostgreSQL."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; prefsvc stores aware UTC timestamps")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def expire_held(session: Session, model: type, ident: int) -> None:
    """Let a row the session holds be read again after a Core statement changed it.

    Core statements on the session's connection skip the ORM's bulk paths, which cost more
    CPU (and memory) than the statements; a copy the session loaded before must not be stale.
    """
    held = session.identity_map.get(session.identity_key(model, ident))
    if held is not None:
        session.expire(held)


def new_public_id() -> str:
    """Return a random, unguessable id for links: neither the database id nor the address."""
    return secrets.token_urlsafe(12)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Language(enum.StrEnum):
    NL = "nl"
    FR = "fr"
    EN = "en"


# The languages of pages, mails and imports, as text, in the order pages offer them.
LANGUAGES: tuple[str, ...] = tuple(language.value for language in Language)


class Role(enum.StrEnum):
    TRAINEE = "trainee"
    CUSTOMER = "customer"
    TEACHER = "teacher"


class Basis(enum.StrEnum):
    """Why we may mail someone: their consent, a purchase, or an enrolment/attendance."""

    CONSENT = "consent"
    CUSTOMER = "customer"
    TRAINING = "training"


class ContactStatus(enum.StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"  # left every topic: an objection to direct marketing
    ERASED = "erased"
    ANONYMISED = "anonymised"


class SubscriptionStatus(enum.StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class EventKind(enum.StrEnum):
    IMPORTED = "imported"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    RESUBSCRIBED = "resubscribed"
    OBJECTION = "objection"
    PREFERENCES = "preferences"
    PAUSED = "paused"
    RENEWED = "renewed"
    RECTIFIED = "rectified"
    EXPORTED = "exported"
    ERASED = "erased"
    ANONYMISED = "anonymised"
    # Mail to the address came back for good (a hard bounce, or soft ones to the limit): not a
    # choice, but why the person is no longer mailed, and what other systems must know.
    BOUNCED = "bounced"


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class ContentFormat(enum.StrEnum):
    """How a campaign's content is written: raw HTML, or Markdown in the house layout."""

    HTML = "html"
    MARKDOWN = "markdown"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    EXCLUDED = "excluded"


class SuppressionReason(enum.StrEnum):
    OBJECTION = "objection"
    ERASURE = "erasure"
    COMPLAINT = "complaint"
    BOUNCE = "bounce"


class RightsKind(enum.StrEnum):
    """The data-subject rights handled through the request register."""

    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"


class RightsStatus(enum.StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    DONE = "done"
    REFUSED = "refused"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Topic(Base):
    """A newsletter a contact can subscribe to."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    # A name and a description per language (LANGUAGES); NULL where none was written.
    name_nl: Mapped[str | None] = mapped_column(String(200))
    name_fr: Mapped[str | None] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    description_nl: Mapped[str | None] = mapped_column(Text)
    description_fr: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("length(slug) > 0", name="slug_not_empty"),)

    def name_in(self, language: str) -> str:
        """Return the name in ``language``, else the Dutch one, else any, else the slug."""
        return in_language(self.names, str(language)) or self.slug

    def description_in(self, language: str) -> str | None:
        """Return the description in ``language``, falling back as ``name_in`` does."""
        return in_language(self.descriptions, str(language))

    @property
    def names(self) -> dict[str, str | None]:
        return {lang: getattr(self, f"name_{lang}") for lang in LANGUAGES}

    @property
    def descriptions(self) -> dict[str, str | None]:
        return {lang: getattr(self, f"description_{lang}") for lang in LANGUAGES}

    # ``name`` and ``description`` read the Dutch text (staff pages, logs) and set all three
    # languages at once, as ``topics create --name`` does.
    @property
    def name(self) -> str:
        return self.name_in(Language.NL)

    @name.setter
    def name(self, value: str) -> None:
        for lang in LANGUAGES:
            setattr(self, f"name_{lang}", value)

    @property
    def description(self) -> str | None:
        return self.description_in(Language.NL)

    @description.setter
    def description(self, value: str | None) -> None:
        for lang in LANGUAGES:
            setattr(self, f"description_{lang}", value)


def in_language(texts: dict[str, str | None], language: str) -> str | None:
    """Pick the text in ``language``, else Dutch, else the first non-empty one in LANGUAGES."""
    for lang in (language, Language.NL.value, *LANGUAGES):
        if texts.get(lang):
            return texts[lang]
    return None


class Contact(Base):
    """A person we may mail; personal fields become NULL when erased or anonymised."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    organisation: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[Language] = mapped_column(_enum(Language, "language"), default=Language.NL)
    role: Mapped[Role | None] = mapped_column(_enum(Role, "role"))
    basis: Mapped[Basis | None] = mapped_column(_enum(Basis, "basis"))
    basis_date: Mapped[date | None] = mapped_column(Date)
    window_anchor: Mapped[date] = mapped_column(Date)
    status: Mapped[ContactStatus] = mapped_column(
        _enum(ContactStatus, "contact_status"), default=ContactStatus.ACTIVE
    )
    paused_until: Mapped[date | None] = mapped_column(Date)
    # Set by the source system when the law requires keeping some data (e.g. invoicing):
    # erasure then still removes marketing data and says what is kept and why.
    legal_hold_reason: Mapped[str | None] = mapped_column(String(500))
    legal_hold_until: Mapped[date | None] = mapped_column(Date)
    # Mail that came back (``prefsvc.inbound.policy``): set, the address is excluded as bounced
    # (a hard bounce, or soft bounces up to the score limit) or as complained.
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bounce_code: Mapped[str | None] = mapped_column(String(16))
    bounce_diagnostic: Mapped[str | None] = mapped_column(String(300))
    bounce_score: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_soft_bounce_on: Mapped[date | None] = mapped_column(Date)
    complained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="contact", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("email IS NULL OR email = lower(email)", name="email_normalised"),
        Index("ix_contacts_window_anchor", "window_anchor"),
    )


class Subscription(Base):
    """Whether one contact receives one topic; rows are kept when they unsubscribe."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="RESTRICT"))
    status: Mapped[SubscriptionStatus] = mapped_column(
        _enum(SubscriptionStatus, "subscription_status"), default=SubscriptionStatus.SUBSCRIBED
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="subscriptions")
    topic: Mapped[Topic] = relationship()

    __table_args__ = (
        UniqueConstraint("contact_id", "topic_id", name="uq_subscriptions_contact_topic"),
        Index("ix_subscriptions_topic_status", "topic_id", "status"),
    )


class ConsentEvent(Base):
    """One line of the append-only consent ledger: what changed, when, through which channel.

    Rows are hash-chained (``prefsvc.consent.ledger`` appends them) and hold no personal data, so
    erasure and anonymisation never rewrite them; the database refuses UPDATE and DELETE
    (triggers in ``prefsvc.consent.ledger``).
    """

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="RESTRICT"))
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="RESTRICT"))
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind, "event_kind"))
    channel: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_consent_events_contact", "contact_id", "id"),)


class LedgerHead(Base):
    """The one row naming the last event of the chain; appenders lock it, so seq is gapless."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class Campaign(Base):
    """A mailing to one topic's subscribers; content lives in per-language variants."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="RESTRICT"))
    default_language: Mapped[Language] = mapped_column(
        _enum(Language, "language"), default=Language.NL
    )
    # The variant contacts get whose language has none; NULL: they are not sent the campaign.
    fallback_language: Mapped[Language | None] = mapped_column(_enum(Language, "fallback_language"))
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    audience_size: Mapped[int | None] = mapped_column(Integer)
    # Staff's own label (lists, duplicates); NULL: the default variant's subject stands in.
    name: Mapped[str | None] = mapped_column(String(200))
    content_format: Mapped[ContentFormat] = mapped_column(
        _enum(ContentFormat, "content_format"), default=ContentFormat.HTML
    )
    # Set when a finished campaign is put away: hidden from the default campaign list.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Links in the HTML go through counting redirects (/c/<token>); off unless asked for.
    track_clicks: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why a paused campaign was paused when it paused itself (``complaint_rate``); NULL when
    # the team paused it. Shown on the campaign page; resuming clears it.
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    # When batch jobs were last written for its queued deliveries (launch, resume, recovery):
    # the scheduler re-queues a campaign with no claim and no job since REQUEUE_AFTER_SECONDS.
    jobs_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    topic: Mapped[Topic] = relationship()
    variants: Mapped[list[CampaignVariant]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="CampaignVariant.id"
    )

    @property
    def label(self) -> str:
        """Return what staff call the campaign: its name, else its default variant's subject."""
        if self.name:
            return self.name
        by_language = {v.language: v for v in self.variants}
        first = by_language.get(self.default_language) or (self.variants or [None])[0]
        return first.subject if first is not None else f"#{self.id}"

    def variant_for(self, language: Language) -> CampaignVariant:
        """Return the variant in ``language``, else the fallback's, else the default's.

        For previews and records; who is sent which variant is ``variant_sent_to``.
        """
        by_language = {v.language: v for v in self.variants}
        return (
            by_language.get(language)
            or by_language.get(self.fallback_language)
            or by_language.get(self.default_language)
            or self.variants[0]
        )

    def variant_sent_to(self, language: Language) -> CampaignVariant | None:
        """Return the variant a contact in ``language`` is sent (None: no variant, no mail)."""
        by_language = {v.language: v for v in self.variants}
        return by_language.get(language) or by_language.get(self.fallback_language)


class CampaignVariant(Base):
    """The subject, HTML and text of a campaign in one language (Jinja2 templates)."""

    __tablename__ = "campaign_variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    language: Mapped[Language] = mapped_column(_enum(Language, "language"))
    subject: Mapped[str] = mapped_column(String(998))
    # The hidden preview line mail clients show after the subject (a Jinja2 template too).
    preheader: Mapped[str | None] = mapped_column(String(255))
    # The content: HTML, or Markdown when the campaign's content_format says so.
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)

    campaign: Mapped[Campaign] = relationship(back_populates="variants")

    __table_args__ = (
        UniqueConstraint("campaign_id", "language", name="uq_campaign_variants_campaign_language"),
    )


class Delivery(Base):
    """One campaign to one contact: the unit that is claimed, sent, failed or excluded."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.QUEUED
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_text: Mapped[str | None] = mapped_column(String(1000))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker process holding it while ``sending`` (a ``heartbeats`` name): its lease.
    owner: Mapped[str | None] = mapped_column(String(100))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What came back about this message (inbound.codes.Kind: hard_bounce, soft_bounce, policy,
    # complaint), the strongest kept: the campaign's bounce and complaint figures.
    feedback: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_deliveries_campaign_contact"),
        Index("ix_deliveries_campaign_status", "campaign_id", "status"),
        CheckConstraint("status <> 'excluded' OR reason IS NOT NULL", name="excluded_has_reason"),
    )


class Suppression(Base):
    """A keyed hash of an address that must never be mailed for marketing again."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(
        _enum(SuppressionReason, "suppression_reason")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("length(address_hash) = 64", name="hash_length"),)


class RightsRequest(Base):
    """One line of the request register: an access, rectification or erasure request.

    The row outlives erasure (it proves the request was handled); ``note`` is cleared then
    because staff may have written personal details in it.
    """

    __tablename__ = "rights_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    kind: Mapped[RightsKind] = mapped_column(_enum(RightsKind, "rights_kind"))
    status: Mapped[RightsStatus] = mapped_column(
        _enum(RightsStatus, "rights_status"), default=RightsStatus.RECEIVED
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_on: Mapped[date] = mapped_column(Date)
    verification: Mapped[str | None] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_rights_requests_status_due_on", "status", "due_on"),
        Index("ix_rights_requests_contact", "contact_id"),
    )


class RetentionRun(Base):
    """What one run of the retention job did (or, on a dry run, would have done)."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    run_on: Mapped[date] = mapped_column(Date)
    last_expired_anchor: Mapped[date] = mapped_column(Date)
    grace_days: Mapped[int] = mapped_column(Integer)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    candidates: Mapped[int] = mapped_column(Integer)
    anonymised: Mapped[int] = mapped_column(Integer)


class RepermissionKind(enum.StrEnum):
    """The two re-permission mails of a window: the request and, later, the reminder."""

    REQUEST = "request"
    REMINDER = "reminder"


class RepermissionMail(Base):
    """A re-permission mail sent for one window; the unique key allows one of each per anchor."""

    __tablename__ = "repermission_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    anchor: Mapped[date] = mapped_column(Date)
    kind: Mapped[RepermissionKind] = mapped_column(_enum(RepermissionKind, "repermission_kind"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("contact_id", "anchor", "kind", name="uq_repermission_mails_window"),
    )


class OutboxJob(Base):
    """A background job recorded in the transaction of the change that needs it.

    Campaign batches, acknowledgements, sign-in links, rights notices: the change and its job
    are committed together or not at all, and a relay in every worker process hands what is
    held to the broker (``prefsvc.queue.outbox``). A broker outage delays jobs, never loses
    them. Ids and parameters only, never an address.
    ``contact_id`` in a notice's args is null for someone who is not a contact yet (the
    confirmation of a public sign-up names its ``SignupRequest`` in its params).
    """

    __tablename__ = "job_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(60))
    args: Mapped[list[Any]] = mapped_column(JSON)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Heartbeat(Base):
    """A process that says it is alive: a worker (its claims are leases) or the scheduler."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_heartbeats_kind_beat_at", "kind", "beat_at"),)


class StaffRole(enum.StrEnum):
    """What a member of staff or a system may do through the API and the admin UI."""

    MARKETING = "marketing"
    PRIVACY = "privacy"
    ADMIN = "admin"


class ApiKey(Base):
    """A bearer key of the API; only its SHA-256 is stored, the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole, "staff_role"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdminUser(Base):
    """A person who signs in to the admin UI; the password is stored as a salted hash."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole, "staff_role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of every session cookie's id: moving it on ends every session of the account.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SignInBrake(Base):
    """Failed staff sign-ins counted under one key (a user name from a client, or a client).

    The key is a digest: neither client addresses nor what was typed are kept.
    """

    __tablename__ = "sign_in_brakes"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_sign_in_brakes_window_started_at", "window_started_at"),)


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the file as a whole was refused (``error`` says why)


class ImportJob(Base):
    """A CSV import (or its preview) run in the background from a file kept under the instance.

    The counts and ``rows_done`` are committed with each chunk of rows, so a job that stopped
    goes on from there. The file (``stored_name`` under ``<instance>/imports``) is deleted
    once the import is done; a preview keeps it until it is imported or left for a day. A
    running job is a lease of its worker process (``owner``, a ``heartbeats`` name), taken over
    once that process stops beating. The retention run deletes jobs after ``IMPORT_KEEP_DAYS``.
    """

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[ImportStatus] = mapped_column(
        _enum(ImportStatus, "import_status"), default=ImportStatus.QUEUED
    )
    dry_run: Mapped[bool] = mapped_column(Boolean)
    filename: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # the field of each column (null: ignored), as a person chose; null: from the headers
    mapping: Mapped[list[Any] | None] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str | None] = mapped_column(String(200))
    # the preview this import was started from: one import per preview
    preview_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="SET NULL"), unique=True
    )
    encoding: Mapped[str | None] = mapped_column(String(16))
    rows_total: Mapped[int | None] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker process running it (a ``heartbeats`` name): its lease while ``running``.
    owner: Mapped[str | None] = mapped_column(String(100))
    # When its last ``run_import`` job was held: the scheduler makes a new one once it is lost.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("rows_done >= 0", name="rows_done_not_negative"),
        Index("ix_import_jobs_status", "status"),
    )


class ImportJobRow(Base):
    """A row of an import job worth telling: rejected (with the cell and why), suppressed, kept.

    Codes and parameters, not sentences: each reader sees them in their own language.
    """

    __tablename__ = "import_job_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # rejected, suppressed, kept
    field: Mapped[str | None] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_import_job_rows_job_id_line", "job_id", "line"),)


class AuditEvent(Base):
    """Who (an API key or an admin user) did what to which object; ids, never addresses."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_events_occurred_at", "occurred_at"),)


class InboundMessage(Base):
    """A message that came back (bounce, complaint, auto-reply, ``mailto:`` unsubscribe).

    Kept raw for the team to see why something happened, and deleted after
    ``INBOUND_KEEP_DAYS`` by the retention job (it quotes addresses: never logged). ``digest``
    makes the same report, delivered twice, count once.
    """

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(32))
    raw: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_inbound_messages_received_at", "received_at"),
        Index("ix_inbound_messages_contact", "contact_id"),
    )


class SignupRequest(Base):
    """A public sign-up waiting for its confirmation: only what the confirmation needs.

    The address, first name, language and topics are kept until the person confirms from
    their mailbox or the link expires (``expires_at``); then the row is deleted
    (``prefsvc.recipient.signup``). ``public_id`` is what the signed link names; one open
    request per address, the newest replaces older ones.
    """

    __tablename__ = "signup_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[Language] = mapped_column(_enum(Language, "language"))
    topic_ids: Mapped[list[int]] = mapped_column(JSON)
    consent_version: Mapped[str] = mapped_column(String(40))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_normalised"),
        Index("ix_signup_requests_expires_at", "expires_at"),
    )


class LinkClick(Base):
    """How often one link of a campaign was followed: a count, never who followed it.

    Written at fan-out for campaigns with ``track_clicks`` (one row per distinct link, in the
    order of ``mail.clicks.campaign_links``); ``/c/<token>`` only redirects to a URL found here,
    so the redirect cannot be pointed anywhere else.
    """

    __tablename__ = "link_clicks"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    link: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (CheckConstraint("clicks >= 0", name="clicks_not_negative"),)


class WebhookEndpoint(Base):
    """A receiver an admin registered: its URL, the events it wants and its signing secrets.

    The secret is kept as given (``whsec_…``): signing needs it. During a rotation the
    previous secret still signs until ``previous_secret_until``, so a receiver that has not
    switched yet keeps verifying (``prefsvc.webhooks.signing``).
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Since when every attempt failed (NULL after a success); three days of it disables.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookOutboxEvent(Base):
    """An event held in the transaction of the change that caused it, until a relay fans it out.

    Ledger appends hold one row per event (``prefsvc.consent.ledger``, both twins); bounces and
    finished campaigns hold theirs where they happen. Ids only: the payload is built later.
    """

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    ledger_seq: Mapped[int | None] = mapped_column(Integer)
    contact_id: Mapped[int | None] = mapped_column(Integer)
    topic_id: Mapped[int | None] = mapped_column(Integer)
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    # An erased address's keyed hash (the suppression list's), the only trace a receiver gets.
    address_hash: Mapped[str | None] = mapped_column(String(64))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the retry window; a replay makes it pending again


class WebhookDelivery(Base):
    """One event for one endpoint: its message id, payload (without address) and last answer."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[WebhookDeliveryStatus] = mapped_column(
        _enum(WebhookDeliveryStatus, "webhook_delivery_status"),
        default=WebhookDeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pending_since: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_response: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_lane", "endpoint_id", "contact_id", "id"),
    )
