"""Prometheus figures read from the database and the broker at scrape time.

Reading the shared database (not in-process counters) keeps the figures right however many
gunicorn and worker processes run on however many machines.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prefsvc.models import Campaign, ConsentEvent, Delivery, DeliveryStatus, EventKind


class DatabaseCollector(Collector):
    """Yield delivery, campaign and consent figures, plus the broker's queue depth."""

    RATE_WINDOW = timedelta(seconds=60)

    def __init__(
        self, session: Session, queue_depth: int | None, now: datetime | None = None
    ) -> None:
        self.session = session
        self.queue_depth = queue_depth
        self.now = now

    def collect(self) -> Iterator[Metric]:
        messages = CounterMetricFamily(
            "prefsvc_messages",
            "Campaign deliveries by final state and reason",
            labels=["state", "reason"],
        )
        pending = GaugeMetricFamily(
            "prefsvc_deliveries_open", "Deliveries not final yet", labels=["state"]
        )
        rows = self.session.execute(
            select(Delivery.status, Delivery.reason, func.count()).group_by(
                Delivery.status, Delivery.reason
            )
        ).all()
        for status, reason, n in rows:
            if status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
                pending.add_metric([status.value], n)
            else:
                messages.add_metric([status.value, reason or ""], n)
        yield messages
        yield pending

        if self.now is not None:
            recent = self.session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.status == DeliveryStatus.SENT,
                    Delivery.sent_at > self.now - self.RATE_WINDOW,
                    Delivery.sent_at <= self.now,
                )
            )
            yield GaugeMetricFamily(
                "prefsvc_send_rate",
                "Campaign messages sent per second, averaged over the last minute",
                value=(recent or 0) / self.RATE_WINDOW.total_seconds(),
            )

        campaigns = GaugeMetricFamily("prefsvc_campaigns", "Campaigns by status", labels=["status"])
        for status, n in self.session.execute(
            select(Campaign.status, func.count()).group_by(Campaign.status)
        ):
            campaigns.add_metric([status.value], n)
        yield campaigns

        optouts = CounterMetricFamily(
            "prefsvc_unsubscribes",
            "Unsubscribes and objections by channel",
            labels=["kind", "channel"],
        )
        for kind, channel, n in self.session.execute(
            select(ConsentEvent.kind, ConsentEvent.channel, func.count())
            .where(ConsentEvent.kind.in_([EventKind.UNSUBSCRIBED, EventKind.OBJECTION]))
            .group_by(ConsentEvent.kind, ConsentEvent.channel)
        ):
            optouts.add_metric([kind.value, channel], n)
        yield optouts

        yield from self._complaint_rates()

        if self.queue_depth is not None:
            yield GaugeMetricFamily(
                "prefsvc_queue_depth", "Jobs waiting in the send queue", value=self.queue_depth
            )

    def _complaint_rates(self) -> Iterator[Metric]:
        """Complaint rate per campaign that has complaints, and how many pass the 0.1 % mark."""
        from prefsvc.inbound import guard

        per_campaign = GaugeMetricFamily(
            "prefsvc_campaign_complaint_rate",
            "Spam complaints as a share of the campaign's sent messages (Gmail/Yahoo: < 0.003)",
            labels=["campaign"],
        )
        warning = 0
        complaints = func.count().filter(Delivery.feedback == "complaint")
        rows = self.session.execute(
            select(
                Delivery.campaign_id,
                complaints,
                func.count().filter(Delivery.status == DeliveryStatus.SENT),
            )
            .group_by(Delivery.campaign_id)
            .having(complaints > 0)
        )
        for campaign_id, complained, sent in rows:
            per_campaign.add_metric([str(campaign_id)], complained / sent if sent else 0.0)
            warning += guard.complaint_level(complained, sent) != "ok"
        yield per_campaign
        yield GaugeMetricFamily(
            "prefsvc_campaigns_complaint_warning",
            "Campaigns whose complaint rate is above 0.1 % (warn) or at 0.3 % (pause)",
            value=warning,
        )
