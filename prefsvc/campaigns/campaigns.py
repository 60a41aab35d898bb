"""Campaigns: create, start (fan-out), launch and report, draft -> sending -> sent.

Fan-out writes every delivery row with one ``INSERT … SELECT`` on the database server, eligible
contacts as ``queued`` and the others as ``excluded`` with their reason, so the figures of a
campaign stay true after contacts change or are anonymised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, insert, literal, select, update
from sqlalchemy.orm import Session

from prefsvc import paging
from prefsvc.campaigns import audience
from prefsvc.errors import CampaignStateError, InvalidFields, InvalidInput, NotFound
from prefsvc.inbound import guard
from prefsvc.mail import clicks, layout, rendering
from prefsvc.mail.limits import Limits
from prefsvc.models import (
    Campaign,
    CampaignStatus,
    CampaignVariant,
    ConsentEvent,
    Contact,
    ContentFormat,
    Delivery,
    DeliveryStatus,
    EventKind,
    Language,
    Topic,
)
from prefsvc.people import topics
from prefsvc.queue import outbox
from prefsvc.webhooks import outbox as webhook_outbox

log = logging.getLogger(__name__)
OPEN_STATES = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
SEND_BATCH = "send_batch"  # the actor of a batch job (prefsvc.queue.actors)
NO_FALLBACK = "none"


def create(
    session: Session,
    *,
    topic_slug: str,
    variants: dict[str, tuple[str, str, str | None]],
    default_language: str | None = None,
    fallback: str | None = None,
    content_format: str = ContentFormat.HTML,
    preheaders: dict[str, str | None] | None = None,
    name: str | None = None,
    bounds: Limits = rendering.DEFAULT_LIMITS,
    track_clicks: bool = False,
) -> Campaign:
    """Create a draft campaign with one variant per language: ``{lang: (subject, html, text)}``.

    ``fallback``: the language whose variant goes to contacts whose language has none (None:
    the default language), or ``"none"``: those contacts are not sent it. ``content_format``
    says whether each variant's content is HTML or Markdown (put into the house layout);
    ``preheaders`` holds the hidden preview line per language. ``bounds``: the time and size
    limits every template's sample render must keep to (``TEMPLATE_*`` settings).
    """
    fmt = _format(content_format)
    preheaders = _preheaders(preheaders, variants)
    topic, default = _checked(
        session, topic_slug, variants, default_language, fmt, preheaders, bounds
    )
    campaign = Campaign(
        topic=topic,
        default_language=default,
        fallback_language=_fallback(fallback, variants, default),
        status=CampaignStatus.DRAFT,
        content_format=fmt,
        name=_name(name),
        track_clicks=track_clicks,
    )
    campaign.variants = _variants(variants, preheaders)
    session.add(campaign)
    session.flush()
    return campaign


def _checked(
    session: Session,
    topic_slug: str,
    variants: dict[str, tuple[str, str, str | None]],
    default_language: str | None,
    content_format: ContentFormat = ContentFormat.HTML,
    preheaders: dict[str, str | None] | None = None,
    bounds: Limits = rendering.DEFAULT_LIMITS,
) -> tuple[Topic, Language]:
    """Check the topic and every variant; return the topic and the default language.

    Every problem of every variant is raised at once (``InvalidFields``), each reason led by
    its language when the campaign has several.
    """
    if not variants:
        raise InvalidInput("variants", "a campaign needs at least one language variant")
    topic = topics.by_slug(session, topic_slug)
    preheaders = preheaders or {}
    found: dict[str, list[str]] = {}
    languages = []
    for lang, (subject, html, text) in variants.items():
        problems = _variant_problems(
            lang,
            subject,
            html,
            text,
            topic.name_in(lang),
            bounds,
            content_format=content_format,
            preheader=preheaders.get(lang),
        )
        for field, reason in problems.items():
            found.setdefault(field, []).append(f"{lang}: {reason}" if len(variants) > 1 else reason)
        if not problems:
            languages.append(Language(lang))
    if found:
        raise InvalidFields(found)
    default = Language(default_language) if default_language else languages[0]
    if default not in languages:
        raise InvalidInput("default_language", "must be one of the variants' languages")
    return topic, default


def _fallback(fallback: str | None, variants: dict[str, Any], default: Language) -> Language | None:
    """Return the fallback language asked for: ``None`` means the default, ``"none"`` none."""
    if fallback is None:
        return default
    if fallback == NO_FALLBACK:
        return None
    if fallback not in variants:
        raise InvalidInput("fallback", "must be one of the variants' languages, or none")
    return Language(fallback)


def _variant_problems(
    lang: str,
    subject: str,
    html: str,
    text: str | None,
    topic: str,
    bounds: Limits,
    *,
    content_format: ContentFormat = ContentFormat.HTML,
    preheader: str | None = None,
) -> dict[str, str]:
    """Check one variant: ``{field: reason}`` for each bad one of language, subject, HTML, text."""
    try:
        language = Language(lang)
    except ValueError:
        return {"language": f"{lang!r} is not one of nl, fr, en"}
    problems: dict[str, str] = {}
    if not subject.strip():
        problems["subject"] = "is empty"
    if not html.strip():
        problems["html"] = "is empty"
    if preheader is not None and len(preheader) > PREHEADER_MAX:
        problems["preheader"] = f"is longer than {PREHEADER_MAX} characters"
    try:
        layout.compile_variant(
            content_format=content_format,
            subject=subject or " ",
            content=html if html.strip() else "<p></p>",
            text=text,
            preheader=preheader,
            language=language.value,
            topic_name=topic,
            identity=layout.SAMPLE_IDENTITY,
            bounds=bounds,
        )
    except InvalidFields as exc:
        for field, reasons in exc.fields.items():
            problems.setdefault(field, reasons[0])
    except InvalidInput as exc:
        problems.setdefault(exc.field, exc.reason)
    if "html" in problems and not (text and text.strip()):
        # The plain text is made from the HTML: its error is the HTML's, shown once, there.
        problems.pop("text", None)
    return problems


PREHEADER_MAX = 255
NAME_MAX = 200


def _format(content_format: str | ContentFormat) -> ContentFormat:
    try:
        return ContentFormat(content_format)
    except ValueError:
        raise InvalidInput("content_format", "must be html or markdown") from None


def _preheaders(
    preheaders: dict[str, str | None] | None, variants: dict[str, Any]
) -> dict[str, str | None]:
    """Keep the preheaders of the written languages, blank ones as none."""
    given = preheaders or {}
    return {lang: " ".join((given.get(lang) or "").split()) or None for lang in variants}


def _name(name: str | None) -> str | None:
    name = " ".join((name or "").split())
    if len(name) > NAME_MAX:
        raise InvalidInput("name", f"is longer than {NAME_MAX} characters")
    return name or None


def _variants(
    variants: dict[str, tuple[str, str, str | None]],
    preheaders: dict[str, str | None] | None = None,
) -> list[CampaignVariant]:
    preheaders = preheaders or {}
    return [
        CampaignVariant(
            language=Language(lang), subject=s, html=h, text=t, preheader=preheaders.get(lang)
        )
        for lang, (s, h, t) in variants.items()
    ]


def get(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def start(session: Session, campaign: Campaign, *, now: datetime, today: date, years: int) -> int:
    """Fan the campaign out into delivery rows and mark it sending; return the audience size."""
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise CampaignStateError(f"campaign {campaign.id} is {campaign.status.value}, not a draft")
    candidates = audience.candidates(campaign, on=today, years=years).subquery()
    session.execute(
        insert(Delivery).from_select(
            ["campaign_id", "contact_id", "status", "reason", "attempts"],
            select(
                literal(campaign.id),
                candidates.c.id,
                case(
                    (candidates.c.reason.is_(None), literal(DeliveryStatus.QUEUED.value)),
                    else_=literal(DeliveryStatus.EXCLUDED.value),
                ),
                candidates.c.reason,
                literal(0),
            ),
        )
    )
    size = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.QUEUED)
    )
    campaign.audience_size = size or 0
    clicks.record_links(session, campaign)  # the only URLs its redirects may lead to
    campaign.status = CampaignStatus.SENDING
    campaign.queued_at = now
    session.flush()
    if finish_if_done(session, campaign.id, now=now):
        session.refresh(campaign)
    return campaign.audience_size


def queued_batches(session: Session, campaign_id: int, size: int) -> Iterator[list[int]]:
    """Yield the ids of the campaign's queued deliveries in batches of ``size``."""
    ids = session.scalars(
        select(Delivery.id)
        .where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.QUEUED)
        .order_by(Delivery.id)
    ).all()
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


def hold_batches(
    session: Session, campaign_id: int, ids: list[int], *, batch_size: int, now: datetime
) -> int:
    """Write batch jobs for ``ids`` to the job outbox, in the caller's transaction.

    A relay hands them to the broker once committed (``prefsvc.queue.outbox``): the rows and
    their jobs exist together or not at all. ``jobs_at`` tells the scheduler jobs were made.
    """
    for i in range(0, len(ids), batch_size):
        outbox.add(session, SEND_BATCH, [ids[i : i + batch_size]], now=now)
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(jobs_at=now)
        .execution_options(synchronize_session=False)
    )
    return len(ids)


def launch(
    session: Session,
    campaign_id: int,
    *,
    now: datetime,
    today: date,
    years: int,
    batch_size: int,
) -> int:
    """Fan a campaign out and hold its batch jobs, then commit; return the audience size.

    Shared by the CLI, the API, the admin UI and the scheduler. The rows and their jobs are
    committed together and no broker is called: a broker outage delays the campaign (a relay
    queues the jobs when it returns) and the caller still answers that it is sending.
    """
    campaign = get(session, campaign_id)
    size = start(session, campaign, now=now, today=today, years=years)
    ids = [i for batch in queued_batches(session, campaign_id, batch_size) for i in batch]
    hold_batches(session, campaign_id, ids, batch_size=batch_size, now=now)
    session.commit()
    log.info("campaign %s launched: audience=%d", campaign_id, size)
    return size


def requeue(session: Session, campaign_id: int, *, batch_size: int, now: datetime) -> int:
    """Hold new jobs for a campaign's remaining deliveries (resume, lost jobs) and commit;
    return how many deliveries they cover."""
    ids = [i for batch in queued_batches(session, campaign_id, batch_size) for i in batch]
    hold_batches(session, campaign_id, ids, batch_size=batch_size, now=now)
    session.commit()
    return len(ids)


def finish_if_done(session: Session, campaign_id: int, *, now: datetime) -> bool:
    """Mark a sending campaign sent once no delivery is open; safe to call from many workers."""
    still_open = (
        select(Delivery.id)
        .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(OPEN_STATES))
        .exists()
    )
    result = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING, ~still_open)
        .values(status=CampaignStatus.SENT, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    webhook_outbox.hold_campaign_sent(session, campaign_id, now=now)
    return True


def stats(session: Session, campaign: Campaign, *, today: date, years: int) -> dict[str, Any]:
    """Report status and counts: audience, sent, failed, excluded by reason, unsubscribes.

    Once launched, also: unsubscribes undone, figures per contact language and, when the
    campaign counts them, clicks per link (``mail.clicks``).
    """
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        preview = audience.count(session, campaign, on=today, years=years)
        languages = audience.by_language(session, campaign, on=today, years=years)
        return _report(campaign, preview.audience, {}, preview.excluded, 0, {}) | {
            "by_language": languages,
            "unsubscribes_undone": 0,
            "per_language": {},
            "clicks": clicks.figures(session, campaign),
        }
    rows = session.execute(
        select(Delivery.status, Delivery.reason, Delivery.feedback, func.count())
        .where(Delivery.campaign_id == campaign.id)
        .group_by(Delivery.status, Delivery.reason, Delivery.feedback)
    ).all()
    by_status: dict[str, int] = {}
    excluded: dict[str, int] = {}
    feedback: dict[str, int] = {}
    for status, reason, came_back, n in rows:
        by_status[status.value] = by_status.get(status.value, 0) + n
        if status is DeliveryStatus.EXCLUDED:
            excluded[reason] = excluded.get(reason, 0) + n
        if came_back is not None:
            feedback[came_back] = feedback.get(came_back, 0) + n
    left, undone = _unsubscribes(session, campaign)
    return _report(
        campaign,
        campaign.audience_size or 0,
        by_status,
        excluded,
        sum(left.values()),
        feedback,
    ) | {
        "by_language": audience.sent_by_language(session, campaign),
        "unsubscribes_undone": undone,
        "per_language": _per_language(session, campaign, left),
        "clicks": clicks.figures(session, campaign),
    }


def _unsubscribes(session: Session, campaign: Campaign) -> tuple[dict[str, int], int]:
    """Count recipients who left after this campaign reached them, net of undone ones.

    Return ``({contact language: still gone}, undone)``: a recipient who unsubscribed and then
    subscribed to the topic again (the undo button, the preference centre) is not counted as
    gone, only as undone.
    """
    leaving = session.execute(
        _left_after_sending(
            Delivery.contact_id, Contact.language, func.max(ConsentEvent.occurred_at), campaign
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .group_by(Delivery.contact_id, Contact.language)
    ).all()
    if not leaving:
        return {}, 0
    rejoined = dict(
        session.execute(
            select(ConsentEvent.contact_id, func.max(ConsentEvent.occurred_at))
            .select_from(Delivery)
            .join(
                ConsentEvent,
                and_(
                    ConsentEvent.contact_id == Delivery.contact_id,
                    ConsentEvent.occurred_at >= Delivery.sent_at,
                ),
            )
            .where(
                Delivery.campaign_id == campaign.id,
                Delivery.status == DeliveryStatus.SENT,
                ConsentEvent.kind.in_([EventKind.SUBSCRIBED, EventKind.RESUBSCRIBED]),
                ConsentEvent.topic_id == campaign.topic_id,
            )
            .group_by(ConsentEvent.contact_id)
        ).all()
    )
    gone: dict[str, int] = {}
    undone = 0
    for contact_id, language, last_left in leaving:
        back = rejoined.get(contact_id)
        if back is not None and back > last_left:
            undone += 1
        else:
            gone[language.value] = gone.get(language.value, 0) + 1
    return gone, undone


def _per_language(
    session: Session, campaign: Campaign, left: dict[str, int]
) -> dict[str, dict[str, int]]:
    """Sent, failed and (net) unsubscribes per contact language, whatever the variant."""
    rows = session.execute(
        select(Contact.language, Delivery.status, func.count())
        .join(Delivery, Delivery.contact_id == Contact.id)
        .where(
            Delivery.campaign_id == campaign.id,
            Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED]),
        )
        .group_by(Contact.language, Delivery.status)
    ).all()
    figures: dict[str, dict[str, int]] = {}
    for language, status, n in rows:
        per = figures.setdefault(language.value, {"sent": 0, "failed": 0, "unsubscribes": 0})
        per[status.value] = n
    for language, n in left.items():
        per = figures.setdefault(language, {"sent": 0, "failed": 0, "unsubscribes": 0})
        per["unsubscribes"] = n
    return dict(sorted(figures.items()))


def _left_after_sending(*columns: Any) -> Select[Any]:
    """Select ``column`` over this campaign's sent deliveries joined to the recipient's later
    unsubscribe from its topic or objection, so ``stats`` and ``timeline`` count the same people.
    The campaign is the last argument.
    """
    *selected, campaign = columns
    return (
        select(*selected)
        .select_from(Delivery)
        .join(
            ConsentEvent,
            and_(
                ConsentEvent.contact_id == Delivery.contact_id,
                ConsentEvent.occurred_at >= Delivery.sent_at,
            ),
        )
        .where(
            Delivery.campaign_id == campaign.id,
            Delivery.status == DeliveryStatus.SENT,
            (
                (ConsentEvent.kind == EventKind.UNSUBSCRIBED)
                & (ConsentEvent.topic_id == campaign.topic_id)
            )
            | (ConsentEvent.kind == EventKind.OBJECTION),
        )
    )


def _report(
    campaign: Campaign,
    size: int,
    by_status: dict[str, int],
    excluded: dict[str, int],
    unsubscribes: int,
    feedback: dict[str, int],
) -> dict[str, Any]:
    """The campaign's figures; ``feedback`` counts deliveries by what came back about them."""
    report = {
        "id": campaign.id,
        "name": campaign.label,
        "status": campaign.status.value,
        "content_format": campaign.content_format.value,
        "archived": campaign.archived_at is not None,
        "topic": campaign.topic.slug,
        "languages": [v.language.value for v in campaign.variants],
        "fallback": campaign.fallback_language.value if campaign.fallback_language else None,
        "track_clicks": campaign.track_clicks,
        "audience": size,
        "queued": by_status.get("queued", 0),
        "sending": by_status.get("sending", 0),
        "sent": by_status.get("sent", 0),
        "failed": by_status.get("failed", 0),
        "excluded": dict(sorted(excluded.items())),
        "unsubscribes": unsubscribes,
        # Mail that came back (prefsvc.inbound.policy), one count per delivery.
        "bounced": feedback.get("hard_bounce", 0),
        "bounced_soft": feedback.get("soft_bounce", 0),
        "complained": feedback.get("complaint", 0),
        "policy_refusals": feedback.get("policy", 0),
        "created_at": campaign.created_at.isoformat(),
        "scheduled_at": campaign.scheduled_at.isoformat() if campaign.scheduled_at else None,
        "queued_at": campaign.queued_at.isoformat() if campaign.queued_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }
    # Shares of the delivered, and the complaint guard rail (prefsvc.inbound.guard).
    report["rates"] = guard.rates(report)
    report["complaint_level"] = guard.complaint_level(report["complained"], report["sent"])
    report["pause_reason"] = campaign.pause_reason
    return report


# --- the admin composer -----------------------------------------------------------------


def variant_problems(
    session: Session,
    *,
    topic_slug: str,
    variants: dict[str, tuple[str, str, str | None]],
    fallback: str | None = None,
    content_format: str = ContentFormat.HTML,
    preheaders: dict[str, str | None] | None = None,
    bounds: Limits = rendering.DEFAULT_LIMITS,
) -> dict[tuple[str | None, str], str]:
    """Check each variant on its own: ``{(language or None, field): reason}``, empty when fine.

    ``create`` stops at the first problem; a form wants every problem next to its own field.
    """
    problems: dict[tuple[str | None, str], str] = {}
    try:
        fmt = _format(content_format)
    except InvalidInput as exc:
        problems[(None, exc.field)] = exc.reason
        fmt = ContentFormat.HTML
    preheaders = _preheaders(preheaders, variants)
    topic = session.scalar(select(Topic).where(Topic.slug == topic_slug))
    if topic is None:
        problems[(None, "topic")] = "choose a topic"
    if not variants:
        problems[(None, "variants")] = "a campaign needs at least one language variant"
    for lang, (subject, html, text) in variants.items():
        name = topic.name_in(lang) if topic else ""
        found = _variant_problems(
            lang,
            subject,
            html,
            text,
            name,
            bounds,
            content_format=fmt,
            preheader=preheaders.get(lang),
        )
        for field, reason in found.items():
            problems[(lang, field)] = reason
    if variants and fallback not in (None, NO_FALLBACK) and fallback not in variants:
        problems[(None, "fallback")] = "write that language, or choose another fallback"
    return problems


def revise(
    session: Session,
    campaign: Campaign,
    *,
    topic_slug: str,
    variants: dict[str, tuple[str, str, str | None]],
    fallback: str | None = None,
    content_format: str | None = None,
    preheaders: dict[str, str | None] | None = None,
    name: str | None = None,
    bounds: Limits = rendering.DEFAULT_LIMITS,
    track_clicks: bool | None = None,
) -> Campaign:
    """Replace a draft's topic, variants and fallback (checked like ``create``); drafts only.

    ``content_format`` None keeps the campaign's; ``name`` None keeps its name.
    """
    if campaign.status is not CampaignStatus.DRAFT:
        raise CampaignStateError(f"campaign {campaign.id} is {campaign.status.value}, not a draft")
    fmt = campaign.content_format if content_format is None else _format(content_format)
    preheaders = _preheaders(preheaders, variants)
    keep = campaign.default_language.value
    topic, default = _checked(
        session, topic_slug, variants, keep if keep in variants else None, fmt, preheaders, bounds
    )
    campaign.topic = topic
    campaign.default_language = default
    campaign.fallback_language = _fallback(fallback, variants, default)
    campaign.content_format = fmt
    if name is not None:
        campaign.name = _name(name)
    if track_clicks is not None:
        campaign.track_clicks = track_clicks
    campaign.variants.clear()
    session.flush()
    campaign.variants.extend(_variants(variants, preheaders))
    session.flush()
    return campaign


def recent(session: Session, *, limit: int = 10, archived: bool = False) -> list[Campaign]:
    """Return the latest campaigns, newest first: those not archived, or only the archived."""
    shelf = Campaign.archived_at.is_not(None) if archived else Campaign.archived_at.is_(None)
    return list(
        session.scalars(
            select(Campaign)
            .where(shelf)
            .order_by(Campaign.created_at.desc(), Campaign.id.desc())
            .limit(limit)
        )
    )


# --- daily work: duplicate, delete a draft, archive ------------------------------------

COPY_SUFFIX = " (copy)"
ARCHIVABLE = (CampaignStatus.SENT, CampaignStatus.CANCELLED)


def duplicate(session: Session, campaign: Campaign) -> Campaign:
    """Start a new draft from any campaign: same topic, languages, fallback and content.

    Not checked again: the source was checked when it was written, and the draft is checked
    whenever it is revised or sent. The name ends in " (copy)" so the two are told apart.
    """
    copy = Campaign(
        topic_id=campaign.topic_id,
        default_language=campaign.default_language,
        fallback_language=campaign.fallback_language,
        status=CampaignStatus.DRAFT,
        content_format=campaign.content_format,
        name=(campaign.label[: NAME_MAX - len(COPY_SUFFIX)] + COPY_SUFFIX),
    )
    copy.variants = [
        CampaignVariant(
            language=v.language, subject=v.subject, preheader=v.preheader, html=v.html, text=v.text
        )
        for v in campaign.variants
    ]
    session.add(copy)
    session.flush()
    return copy


def delete_draft(session: Session, campaign: Campaign) -> None:
    """Delete a draft for good; anything that was scheduled or sent keeps its record."""
    if campaign.status is not CampaignStatus.DRAFT:
        raise CampaignStateError(
            f"campaign {campaign.id} is {campaign.status.value}: only a draft can be deleted"
        )
    session.delete(campaign)
    session.flush()


def archive(session: Session, campaign: Campaign, *, now: datetime) -> Campaign:
    """Put a sent or cancelled campaign away from the default list; its figures stay."""
    if campaign.status not in ARCHIVABLE:
        raise CampaignStateError(
            f"campaign {campaign.id} is {campaign.status.value}:"
            " only a sent or cancelled campaign can be archived"
        )
    if campaign.archived_at is None:
        campaign.archived_at = now
        session.flush()
    return campaign


def unarchive(session: Session, campaign: Campaign) -> Campaign:
    """Bring an archived campaign back to the default list."""
    campaign.archived_at = None
    session.flush()
    return campaign


def timeline(session: Session, campaign: Campaign) -> list[tuple[datetime, str]]:
    """Return ``(when, "sent" | "unsubscribed")`` for the campaign's chart, oldest first.

    Unsubscribes count as in ``stats``: recipients leaving the topic (or everything) after
    this campaign reached them, at the time of their first such event.
    """
    sent = session.execute(
        select(Delivery.sent_at).where(
            Delivery.campaign_id == campaign.id,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.sent_at.is_not(None),
        )
    ).scalars()
    left = session.execute(
        _left_after_sending(func.min(ConsentEvent.occurred_at), campaign).group_by(
            Delivery.contact_id
        )
    ).scalars()
    points = [(when, "sent") for when in sent] + [(when, "unsubscribed") for when in left]
    return sorted(points)


def search(
    session: Session,
    *,
    status: str | None = None,
    archived: bool | None = False,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Campaign], int]:
    """Return one page of campaigns (newest first) with a status, and how many match.

    ``archived``: False (the default) leaves archived campaigns out, True lists only them,
    None lists both.
    """
    query = select(Campaign)
    if status:
        query = query.where(Campaign.status == CampaignStatus(status))
    if archived is not None:
        shelf = Campaign.archived_at.is_not(None) if archived else Campaign.archived_at.is_(None)
        query = query.where(shelf)
    return paging.one_page(
        session, query, order_by=[Campaign.id.desc()], page=page, per_page=per_page
    )
