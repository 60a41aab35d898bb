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
from prefsvc.errors import CampaignStateError, InvalidInput, NotFound
from prefsvc.mail import rendering
from prefsvc.models import (
    Campaign,
    CampaignStatus,
    CampaignVariant,
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    EventKind,
    Language,
    Topic,
)
from prefsvc.people import topics
from prefsvc.queue import outbox

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
) -> Campaign:
    """Create a draft campaign with one variant per language: ``{lang: (subject, html, text)}``.

    ``fallback``: the language whose variant goes to contacts whose language has none (None:
    the default language), or ``"none"``: those contacts are not sent it.
    """
    topic, default = _checked(session, topic_slug, variants, default_language)
    campaign = Campaign(
        topic=topic,
        default_language=default,
        fallback_language=_fallback(fallback, variants, default),
        status=CampaignStatus.DRAFT,
    )
    campaign.variants = _variants(variants)
    session.add(campaign)
    session.flush()
    return campaign


def _checked(
    session: Session,
    topic_slug: str,
    variants: dict[str, tuple[str, str, str | None]],
    default_language: str | None,
) -> tuple[Topic, Language]:
    """Check the topic and every variant; return the topic and the default language."""
    if not variants:
        raise InvalidInput("variants", "a campaign needs at least one language variant")
    topic = topics.by_slug(session, topic_slug)
    languages = [
        _checked_variant(lang, subject, html, text, topic.name_in(lang))
        for lang, (subject, html, text) in variants.items()
    ]
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


def _checked_variant(lang: str, subject: str, html: str, text: str | None, topic: str) -> Language:
    try:
        language = Language(lang)
    except ValueError:
        raise InvalidInput("language", f"{lang!r} is not one of nl, fr, en") from None
    if not subject.strip():
        raise InvalidInput("subject", "is empty")
    if not html.strip():
        raise InvalidInput("html", "is empty")
    rendering.compile_variant(
        subject=subject, html=html, text=text, language=language.value, topic_name=topic
    )
    return language


def _variants(variants: dict[str, tuple[str, str, str | None]]) -> list[CampaignVariant]:
    return [
        CampaignVariant(language=Language(lang), subject=s, html=h, text=t)
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
    return result.rowcount == 1


def stats(session: Session, campaign: Campaign, *, today: date, years: int) -> dict[str, Any]:
    """Report status and counts: audience, sent, failed, excluded by reason, unsubscribes."""
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        preview = audience.count(session, campaign, on=today, years=years)
        languages = audience.by_language(session, campaign, on=today, years=years)
        return _report(campaign, preview.audience, {}, preview.excluded, 0, {}) | {
            "by_language": languages
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
    return _report(
        campaign,
        campaign.audience_size or 0,
        by_status,
        excluded,
        _unsubscribes(session, campaign),
        feedback,
    ) | {"by_language": audience.sent_by_language(session, campaign)}


def _unsubscribes(session: Session, campaign: Campaign) -> int:
    """Count recipients who left the topic (or everything) after this campaign reached them."""
    return (
        session.scalar(
            _left_after_sending(func.count(func.distinct(ConsentEvent.contact_id)), campaign)
        )
        or 0
    )


def _left_after_sending(column: Any, campaign: Campaign) -> Select[Any]:
    """Select ``column`` over this campaign's sent deliveries joined to the recipient's later
    unsubscribe from its topic or objection, so ``stats`` and ``timeline`` count the same people.
    """
    return (
        select(column)
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
    return {
        "id": campaign.id,
        "status": campaign.status.value,
        "topic": campaign.topic.slug,
        "languages": [v.language.value for v in campaign.variants],
        "fallback": campaign.fallback_language.value if campaign.fallback_language else None,
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


# --- the admin composer -----------------------------------------------------------------


def variant_problems(
    session: Session,
    *,
    topic_slug: str,
    variants: dict[str, tuple[str, str, str | None]],
    fallback: str | None = None,
) -> dict[tuple[str | None, str], str]:
    """Check each variant on its own: ``{(language or None, field): reason}``, empty when fine.

    ``create`` stops at the first problem; a form wants every problem next to its own field.
    """
    problems: dict[tuple[str | None, str], str] = {}
    topic = session.scalar(select(Topic).where(Topic.slug == topic_slug))
    if topic is None:
        problems[(None, "topic")] = "choose a topic"
    if not variants:
        problems[(None, "variants")] = "a campaign needs at least one language variant"
    for lang, (subject, html, text) in variants.items():
        try:
            _checked_variant(lang, subject, html, text, topic.name_in(lang) if topic else "")
        except InvalidInput as exc:
            problems[(lang, exc.field)] = exc.reason
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
) -> Campaign:
    """Replace a draft's topic, variants and fallback (checked like ``create``); drafts only."""
    if campaign.status is not CampaignStatus.DRAFT:
        raise CampaignStateError(f"campaign {campaign.id} is {campaign.status.value}, not a draft")
    keep = campaign.default_language.value
    topic, default = _checked(session, topic_slug, variants, keep if keep in variants else None)
    campaign.topic = topic
    campaign.default_language = default
    campaign.fallback_language = _fallback(fallback, variants, default)
    campaign.variants.clear()
    session.flush()
    campaign.variants.extend(_variants(variants))
    session.flush()
    return campaign


def recent(session: Session, *, limit: int = 10) -> list[Campaign]:
    """Return the latest campaigns, newest first."""
    return list(
        session.scalars(
            select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit)
        )
    )


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
    session: Session, *, status: str | None = None, page: int = 1, per_page: int = 50
) -> tuple[list[Campaign], int]:
    """Return one page of campaigns (newest first) with a status, and how many match."""
    query = select(Campaign)
    if status:
        query = query.where(Campaign.status == CampaignStatus(status))
    return paging.one_page(
        session, query, order_by=[Campaign.id.desc()], page=page, per_page=per_page
    )
