"""Guard rails on complaints: warn past 0.1 %, pause a sending campaign at 0.3 %.

Gmail and Yahoo want a bulk sender's spam-complaint rate under 0.3 % (and aim at 0.1 %); past
that, all of the sender's mail starts going to spam, not only this campaign's. A campaign whose
complaint rate passes ``WARN_RATE`` is flagged on its page and in ``/metrics``; one still sending
that reaches ``PAUSE_RATE`` of at least ``PAUSE_MIN_DELIVERED`` delivered messages pauses itself
(reason ``complaint_rate``), so the team looks before the rest goes out. Rates are over what was
delivered (sent), the denominator the providers use.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from prefsvc.campaigns import control
from prefsvc.inbound.codes import Kind
from prefsvc.models import Campaign, CampaignStatus, Delivery, DeliveryStatus

WARN_RATE = 0.001
PAUSE_RATE = 0.003
PAUSE_MIN_DELIVERED = 1000
PAUSE_REASON = "complaint_rate"
# The figures of ``campaigns.stats`` a rate is shown for.
RATED = ("bounced", "bounced_soft", "complained", "policy_refusals")


def rates(figures: dict) -> dict[str, float | None]:
    """Return each came-back count as a share of the delivered (None before anything was)."""
    sent = figures["sent"]
    return {key: round(figures[key] / sent, 6) if sent else None for key in RATED}


def complaint_level(complained: int, delivered: int) -> str:
    """``ok``, ``warn`` (past 0.1 %) or ``pause`` (0.3 % or more of at least 1,000 delivered)."""
    if not delivered or complained / delivered <= WARN_RATE:
        return "ok"
    if delivered >= PAUSE_MIN_DELIVERED and complained / delivered >= PAUSE_RATE:
        return "pause"
    return "warn"


def after_complaint(session: Session, delivery_id: int) -> bool:
    """Pause the delivery's campaign when its complaint rate calls for it; tell whether it did.

    The campaign is loaded only when it is still sending: most complaints come after.
    """
    session.flush()  # as ``session.execute`` would (autoflush)
    found = session.connection().execute(_CAMPAIGN_OF, {"delivery_id": delivery_id}).first()
    if found is None or found.status is not CampaignStatus.SENDING:
        return False
    complained, delivered = counts(session, found.id)
    if complaint_level(complained, delivered) != "pause":
        return False
    campaign = session.get(Campaign, found.id)
    if campaign is None or campaign.status is not CampaignStatus.SENDING:
        return False
    control.pause(session, campaign, reason=PAUSE_REASON)
    return True


_CAMPAIGN_OF = (
    select(Campaign.id, Campaign.status)
    .join(Delivery, Delivery.campaign_id == Campaign.id)
    .where(Delivery.id == bindparam("delivery_id"))
)


def counts(session: Session, campaign_id: int) -> tuple[int, int]:
    """Return (complaints, delivered) for a campaign."""
    row = session.execute(
        select(
            func.count().filter(Delivery.feedback == Kind.COMPLAINT.value),
            func.count().filter(Delivery.status == DeliveryStatus.SENT),
        ).where(Delivery.campaign_id == campaign_id)
    ).one()
    return row[0], row[1]
