"""Campaign control: schedule, pause, resume and cancel, with the state each move needs.

Launching (the fan-out and queueing) is ``campaigns.launch``; these only change the state a
campaign is in, and the scheduler asks ``due`` which scheduled campaigns to launch.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from prefsvc.errors import CampaignStateError, InvalidInput
from prefsvc.models import Campaign, CampaignStatus, Delivery, DeliveryStatus


def schedule(session: Session, campaign: Campaign, *, at: datetime, now: datetime) -> None:
    """Plan a draft campaign for ``at``; the scheduler launches it when that time comes."""
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise CampaignStateError(f"campaign {campaign.id} is {campaign.status.value}, not a draft")
    if at.tzinfo is None:
        raise InvalidInput("at", "needs a time zone")
    if at <= now:
        raise InvalidInput("at", "is in the past")
    campaign.status = CampaignStatus.SCHEDULED
    campaign.scheduled_at = at


def due(session: Session, *, now: datetime) -> list[int]:
    """Return the ids of scheduled campaigns whose time has come."""
    return list(
        session.scalars(
            select(Campaign.id).where(
                Campaign.status == CampaignStatus.SCHEDULED, Campaign.scheduled_at <= now
            )
        )
    )


def pause(session: Session, campaign: Campaign, *, reason: str | None = None) -> None:
    """Stop handing out deliveries; those already with a worker finish, the rest wait.

    ``reason`` says why when the campaign pauses itself (``complaint_rate``), for the team.
    """
    if campaign.status is not CampaignStatus.SENDING:
        raise CampaignStateError(f"campaign {campaign.id} is {campaign.status.value}, not sending")
    campaign.status = CampaignStatus.PAUSED
    campaign.pause_reason = reason


def resume(session: Session, campaign: Campaign) -> None:
    """Continue a paused campaign (the caller queues its remaining deliveries again)."""
    if campaign.status is not CampaignStatus.PAUSED:
        raise CampaignStateError(f"campaign {campaign.id} is {campaign.status.value}, not paused")
    campaign.status = CampaignStatus.SENDING
    campaign.pause_reason = None


def cancel(session: Session, campaign: Campaign, *, now: datetime) -> int:
    """Cancel a campaign for good; return how many queued deliveries will not be sent."""
    if campaign.status in (CampaignStatus.SENT, CampaignStatus.CANCELLED):
        raise CampaignStateError(f"campaign {campaign.id} is already {campaign.status.value}")
    result = session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.QUEUED)
        .values(status=DeliveryStatus.EXCLUDED, reason="cancelled")
        .execution_options(synchronize_session=False)
    )
    campaign.status = CampaignStatus.CANCELLED
    campaign.finished_at = now
    return result.rowcount
