"""Marshmallow schemas of the JSON API: they validate input and generate the OpenAPI spec.

Every text field refuses NUL characters and unpaired surrogates (PostgreSQL cannot store
them), every number is bounded, every choice is an enum: bad input is a 422, never a 500.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from prefsvc.models import LANGUAGES, Basis, RightsKind, RightsStatus, Role
from prefsvc.people import directory

MAX_PAGE = 100_000
MAX_PER_PAGE = 200
# Beyond these years a date-time could not be converted to UTC or stored everywhere.
EARLIEST_YEAR, LATEST_YEAR = 1900, 9000


class Text(fields.String):
    """A string that any database can store: no NUL, no unpaired surrogate."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("may not contain NUL characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("is not valid Unicode text") from None
        return text


class SafeDate(fields.Date):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        day = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            raise ValidationError(f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
        return day


class SafeDateTime(fields.DateTime):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            raise ValidationError(f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
        return moment


def _choice(values: list[str], **kwargs: Any) -> Text:
    return Text(validate=validate.OneOf(values), **kwargs)


def _name(**kwargs: Any) -> Text:
    return Text(validate=validate.Length(max=200), allow_none=True, **kwargs)


# --- shared -----------------------------------------------------------------------------


class ProblemSchema(Schema):
    """RFC 9457 problem details; ``errors`` names each bad field and why."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(allow_none=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class PageQuery(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(1, MAX_PAGE))
    per_page = fields.Integer(load_default=50, validate=validate.Range(1, MAX_PER_PAGE))


class PageSchema(Schema):
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)


# --- topics -----------------------------------------------------------------------------


def _per_language(length: int, **kwargs: Any) -> fields.Nested:
    """A text per language (nl, fr, en); a language left out or null is left as it is."""
    texts = Schema.from_dict(
        {lang: Text(allow_none=True, validate=validate.Length(max=length)) for lang in LANGUAGES},
        name=f"TopicTexts{length}",
    )
    return fields.Nested(texts, **kwargs)


class TopicPatch(Schema):
    """Texts to change: ``name``/``description`` in every language, ``names``/``descriptions``
    per language (applied after them); an empty text clears that language's."""

    name = Text(validate=validate.Length(1, 200))
    description = Text(allow_none=True, validate=validate.Length(max=2000))
    names = _per_language(200)
    descriptions = _per_language(2000)


class TopicIn(TopicPatch):
    """A new topic: ``name`` (every language) or ``names`` with at least one language."""

    slug = Text(required=True, validate=validate.Length(1, 64))

    @validates_schema
    def _named(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("name") and not any((data.get("names") or {}).values()):
            raise ValidationError("give name, or names with at least one language", "name")


class _TextsOut(Schema):
    nl = fields.String(allow_none=True)
    fr = fields.String(allow_none=True)
    en = fields.String(allow_none=True)


class TopicOut(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "in Dutch, else any language"})
    description = fields.String(allow_none=True)
    names = fields.Nested(_TextsOut, required=True)
    descriptions = fields.Nested(_TextsOut, required=True)


# --- contacts ---------------------------------------------------------------------------


class ContactIn(Schema):
    email = Text(
        required=True, validate=validate.Length(1, 320), metadata={"example": "ana@example.org"}
    )
    first_name = _name()
    last_name = _name()
    organisation = _name()
    language = _choice(LANGUAGES, allow_none=True)
    role = _choice([m.value for m in Role], allow_none=True)
    basis = _choice([m.value for m in Basis], allow_none=True)
    basis_date = SafeDate(allow_none=True)
    topics = fields.List(
        Text(validate=validate.Length(1, 64)),
        validate=validate.Length(max=50),
        load_default=list,
        metadata={"example": ["nieuws"]},
    )


class ContactPatch(Schema):
    first_name = _name()
    last_name = _name()
    organisation = _name()
    language = _choice(LANGUAGES)

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class ContactQuery(PageQuery):
    """The admin's contact-list filters and sorts (``prefsvc.people.directory``)."""

    q = Text(
        validate=validate.Length(1, 200),
        metadata={"description": "Words all found in the address, a name or the organisation."},
    )
    topic = Text(
        validate=validate.Length(1, 64),
        metadata={"description": "Only contacts subscribed to this topic (slug)."},
    )
    language = _choice(LANGUAGES)
    status = _choice(
        list(directory.API_STATUSES),
        metadata={
            "description": "A stored contact status (unsubscribed: objected to all marketing), "
            "or mailable (a campaign would go to them today, to `topic` when given) or "
            "subscribed (active and subscribed to `topic`, or to any topic)."
        },
    )
    window_days = fields.Integer(
        validate=validate.Range(0, directory.MAX_WINDOW_DAYS),
        metadata={
            "description": "Only active contacts whose marketing window ends within "
            "this many days from today."
        },
    )
    bounced = fields.Boolean(
        load_default=False, metadata={"description": "Only addresses that bounced."}
    )
    sort = _choice(
        list(directory.SORTS),
        metadata={
            "description": "name (last, first), email, added or window (anchor); "
            "without it, oldest first."
        },
    )
    order = _choice(["asc", "desc"], load_default="asc")


class SubscriptionOut(Schema):
    topic = fields.String(required=True)
    status = fields.String(required=True)


class LegalHoldOut(Schema):
    reason = fields.String(required=True)
    until = fields.Date(allow_none=True)


class ContactOut(Schema):
    public_id = fields.String(required=True)
    email = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    organisation = fields.String(allow_none=True)
    language = fields.String(required=True)
    role = fields.String(allow_none=True)
    status = fields.String(required=True)
    basis = fields.String(allow_none=True)
    basis_date = fields.String(allow_none=True)
    window_anchor = fields.String(allow_none=True)
    window_expires_on = fields.String(allow_none=True)
    paused_until = fields.String(allow_none=True)
    legal_hold = fields.Nested(LegalHoldOut, allow_none=True)
    subscriptions = fields.List(fields.Nested(SubscriptionOut), required=True)


class ContactPageOut(PageSchema):
    items = fields.List(fields.Nested(ContactOut), required=True)


class SubscriptionChange(Schema):
    topic = fields.String(required=True)
    status = fields.String(required=True)
    changed = fields.Boolean(required=True)


class ErasureOut(Schema):
    public_id = fields.String(required=True)
    kept = fields.List(fields.String(), required=True)
    legal_hold = fields.Nested(LegalHoldOut, allow_none=True)


class ExportOut(Schema):
    generated_at = fields.String()
    contact = fields.Dict()
    subscriptions = fields.List(fields.Dict())
    consent_history = fields.List(fields.Dict())
    deliveries = fields.List(fields.Dict())
    rights_requests = fields.List(fields.Dict())
    suppressed = fields.Boolean()


class LegalHoldIn(Schema):
    reason = Text(required=True, validate=validate.Length(1, 500))
    until = SafeDate(allow_none=True)


# --- campaigns --------------------------------------------------------------------------


class VariantIn(Schema):
    language = _choice(LANGUAGES, required=True)
    subject = Text(required=True, validate=validate.Length(1, 998))
    preheader = Text(
        allow_none=True,
        validate=validate.Length(max=255),
        metadata={"description": "Hidden preview line mail clients show after the subject."},
    )
    html = Text(
        required=True,
        validate=validate.Length(1, 2_000_000),
        metadata={"description": "The content: HTML, or Markdown when content_format says so."},
    )
    text = Text(allow_none=True, validate=validate.Length(max=2_000_000))


class CampaignIn(Schema):
    topic = Text(required=True, validate=validate.Length(1, 64))
    name = Text(
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "What staff call the campaign (default: its subject)."},
    )
    content_format = _choice(
        ["html", "markdown"],
        load_default="html",
        metadata={
            "description": "markdown: each variant's content is Markdown, put into the house "
            "layout (ORGANISATION_NAME, ORGANISATION_ADDRESS, PRIVACY_URL, LOGO_URL)."
        },
    )
    default_language = _choice(LANGUAGES, allow_none=True)
    fallback = _choice(
        [*LANGUAGES, "none"],
        allow_none=True,
        metadata={
            "description": "The variant contacts get whose language has none; null or "
            '"none": they are excluded (no_variant_in_language). Absent: the default language.'
        },
    )
    variants = fields.List(
        fields.Nested(VariantIn), required=True, validate=validate.Length(1, len(LANGUAGES))
    )
    track_clicks = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Count clicks per link through signed redirects naming the campaign "
            "and link, never the recipient (off by default)."
        },
    )

    @validates_schema
    def _one_per_language(self, data: dict[str, Any], **kwargs: Any) -> None:
        languages = [v["language"] for v in data.get("variants", [])]
        if len(languages) != len(set(languages)):
            raise ValidationError("one variant per language", "variants")


class CampaignQuery(PageQuery):
    status = _choice(["draft", "scheduled", "sending", "paused", "sent", "cancelled"])
    archived = _choice(
        ["false", "true", "all"],
        load_default="false",
        metadata={"description": "false (default): not archived; true: only archived; all."},
    )


class CampaignOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(
        required=True, metadata={"description": "Its name, else its default subject."}
    )
    status = fields.String(required=True)
    content_format = fields.String(required=True)
    archived = fields.Boolean(required=True)
    topic = fields.String(required=True)
    languages = fields.List(fields.String(), required=True)
    fallback = fields.String(allow_none=True, required=True)
    audience = fields.Integer(required=True)
    queued = fields.Integer(required=True)
    sending = fields.Integer(required=True)
    sent = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    excluded = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    unsubscribes = fields.Integer(
        required=True,
        metadata={"description": "Recipients who left after it reached them, net of undone."},
    )
    unsubscribes_undone = fields.Integer(
        metadata={"description": "Recipients who left and then subscribed again."}
    )
    track_clicks = fields.Boolean()
    per_language = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        metadata={"description": "Per contact language: sent, failed, unsubscribes (net)."},
    )
    clicks = fields.Dict(
        allow_none=True,
        metadata={
            "description": "With track_clicks: total and per link {link, url, clicks}; "
            "who clicked is never recorded. null otherwise."
        },
    )
    by_language = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        required=True,
        metadata={
            "description": "Per contact language, how many get which variant "
            '(or "excluded": no variant in their language and no fallback).'
        },
    )
    bounced = fields.Integer(required=True, metadata={"description": "Hard bounces."})
    bounced_soft = fields.Integer(
        required=True, metadata={"description": "Soft bounces (full mailbox, 4.x.x)."}
    )
    complained = fields.Integer(required=True, metadata={"description": "Spam complaints."})
    policy_refusals = fields.Integer(
        required=True,
        metadata={"description": "Refusals for the sender's reputation (5.7.x, blocklists)."},
    )
    rates = fields.Dict(
        keys=fields.String(),
        values=fields.Float(allow_none=True),
        required=True,
        metadata={
            "description": "bounced, bounced_soft, complained and policy_refusals as a share "
            "of the sent (0.002 = 0.2 %); null before anything was sent."
        },
    )
    complaint_level = fields.String(
        required=True,
        metadata={
            "description": "ok; warn: complaint rate above 0.1 %; pause: 0.3 % or more of at "
            "least 1,000 sent (a sending campaign pauses itself)."
        },
    )
    pause_reason = fields.String(
        allow_none=True,
        metadata={"description": "complaint_rate when the campaign paused itself; else null."},
    )
    created_at = fields.String(required=True)
    scheduled_at = fields.String(allow_none=True)
    queued_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)


class CampaignPageOut(PageSchema):
    items = fields.List(fields.Nested(CampaignOut), required=True)


class CancelOut(CampaignOut):
    dropped = fields.Integer(required=True)


class ArchiveIn(Schema):
    archived = fields.Boolean(
        load_default=True, metadata={"description": "false: back to the default list."}
    )


class PreviewIn(Schema):
    contact = Text(validate=validate.Length(1, 32))
    language = _choice(LANGUAGES)


class PreviewOut(Schema):
    subject = fields.String(required=True)
    html = fields.String(required=True)
    text = fields.String(required=True)


class TestSendIn(Schema):
    to = Text(required=True, validate=validate.Length(1, 320))
    language = _choice(LANGUAGES)


class TestSendOut(Schema):
    message_id = fields.String(required=True)


class ScheduleIn(Schema):
    at = SafeDateTime(required=True)


# --- imports, suppression ---------------------------------------------------------------


class ImportFileIn(Schema):
    file = Upload(required=True)


class ImportJobOut(Schema):
    id = fields.Integer(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(["queued", "running", "done", "failed"])
    )
    dry_run = fields.Boolean(required=True)
    filename = fields.String(required=True)
    size_bytes = fields.Integer(required=True)
    encoding = fields.String(
        allow_none=True, metadata={"description": "utf-8-sig (UTF-8, BOM or not) or cp1252"}
    )
    rows_total = fields.Integer(allow_none=True, metadata={"description": "known once checked"})
    rows_done = fields.Integer(required=True)
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    suppressed = fields.Integer(required=True)
    error = fields.String(
        allow_none=True, metadata={"description": "why a failed job's file was refused"}
    )
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class SuppressionCheckIn(Schema):
    email = Text(
        required=True, validate=validate.Length(1, 320), metadata={"example": "ana@example.org"}
    )


class SuppressionCheckOut(Schema):
    suppressed = fields.Boolean(required=True)


# --- rights requests, audit -------------------------------------------------------------


class RightsRequestIn(Schema):
    kind = _choice([m.value for m in RightsKind], required=True)
    contact = Text(validate=validate.Length(1, 32), allow_none=True)
    note = Text(allow_none=True, validate=validate.Length(max=5000))


class RightsQuery(PageQuery):
    status = _choice([m.value for m in RightsStatus])
    open = fields.Boolean()


class RightsRequestOut(Schema):
    id = fields.Integer(required=True)
    contact = fields.String(allow_none=True, metadata={"description": "the contact's public id"})
    kind = fields.String(required=True)
    status = fields.String(required=True)
    received_at = fields.String(required=True)
    verification = fields.String(allow_none=True)
    verified_at = fields.String(allow_none=True)
    due_on = fields.String(required=True)
    handled_by = fields.String(allow_none=True)
    closed_at = fields.String(allow_none=True)


class RightsPageOut(PageSchema):
    items = fields.List(fields.Nested(RightsRequestOut), required=True)


class AuditQuery(PageQuery):
    actor = Text(validate=validate.Length(1, 200))
    action = Text(validate=validate.Length(1, 64))


class AuditEventOut(Schema):
    id = fields.Integer(required=True)
    occurred_at = fields.String(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    target = fields.String(allow_none=True)
    detail = fields.Dict(required=True)


class AuditPageOut(PageSchema):
    items = fields.List(fields.Nested(AuditEventOut), required=True)


# --- webhooks and the changes feed (issue 20) ---------------------------------------------

WEBHOOK_EVENTS = [
    "contact.subscribed",
    "contact.unsubscribed",
    "contact.objected",
    "contact.updated",
    "contact.erased",
    "contact.bounced",
    "contact.complained",
    "campaign.sent",
]


class WebhookIn(Schema):
    url = Text(required=True, validate=validate.Length(1, 2000))
    events = fields.List(
        _choice(WEBHOOK_EVENTS), load_default=WEBHOOK_EVENTS, validate=validate.Length(1, 8)
    )
    description = Text(validate=validate.Length(max=200), allow_none=True)


class WebhookOut(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    description = fields.String(allow_none=True)
    events = fields.List(fields.String(), required=True)
    enabled = fields.Boolean(required=True)
    failing_since = fields.String(allow_none=True)
    disabled_at = fields.String(allow_none=True)
    disabled_reason = fields.String(allow_none=True)
    created_at = fields.String(required=True)


class WebhookSecretOut(WebhookOut):
    secret = fields.String(required=True, metadata={"description": "whsec_…, shown once"})


class WebhookListOut(Schema):
    items = fields.List(fields.Nested(WebhookOut), required=True)


class ReplayIn(Schema):
    delivery_id = fields.Integer(validate=validate.Range(1, 2**31 - 1), allow_none=True)
    since = SafeDateTime(allow_none=True)


class ReplayOut(Schema):
    replayed = fields.Integer(required=True)


class WebhookDeliveryOut(Schema):
    id = fields.Integer(required=True)
    message_id = fields.String(required=True)
    event = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.String(allow_none=True)
    last_attempt_at = fields.String(allow_none=True)
    last_status = fields.Integer(allow_none=True)
    last_response = fields.String(allow_none=True)


class WebhookDeliveriesOut(Schema):
    items = fields.List(fields.Nested(WebhookDeliveryOut), required=True)


class ChangesQuery(Schema):
    after = Text(validate=validate.Length(max=40), metadata={"description": "next_cursor"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class ChangeContactOut(Schema):
    public_id = fields.String(required=True)
    email = fields.String(metadata={"description": "while held, for events to act on"})
    address_hash = fields.String(allow_none=True)


class ChangeDataOut(Schema):
    contact = fields.Nested(ChangeContactOut, required=True)
    topic = fields.String(allow_none=True)
    channel = fields.String(allow_none=True)
    ledger_seq = fields.Integer()


class ChangeOut(Schema):
    cursor = fields.String(required=True)
    type = fields.String(required=True)
    timestamp = fields.String(required=True)
    data = fields.Nested(ChangeDataOut, required=True)


class ChangesOut(Schema):
    items = fields.List(fields.Nested(ChangeOut), required=True)
    next_cursor = fields.String(required=True)
    more = fields.Boolean(required=True)
