"""Campaign life cycle: fan-out into delivery rows, state rules and figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from prefsvc.campaigns import campaigns
from prefsvc.errors import CampaignStateError, InvalidInput, NotFound
from prefsvc.models import CampaignStatus, Delivery, DeliveryStatus, OutboxJob
from prefsvc.queue import outbox
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


def test_fan_out_writes_one_row_per_subscriber_with_exclusions(session):
    topic = make_topic(session)
    for i in range(5):
        make_contact(session, f"p{i}@example.org", topics=[topic])
    make_contact(session, "expired@example.org", anchor=date(2020, 1, 1), topics=[topic])
    campaign = make_campaign(session, topic)

    size = campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)

    assert size == 5
    assert campaign.status is CampaignStatus.SENDING
    rows = session.execute(
        select(Delivery.status, Delivery.reason, func.count()).group_by(
            Delivery.status, Delivery.reason
        )
    ).all()
    assert sorted((s.value, r, n) for s, r, n in rows) == [
        ("excluded", "window_expired", 1),
        ("queued", None, 5),
    ]
    report = campaigns.stats(session, campaign, today=TODAY, years=5)
    assert report["audience"] == 5
    assert report["excluded"] == {"window_expired": 1}


def test_database_refuses_a_second_delivery_for_the_same_contact(session):
    topic = make_topic(session)
    contact = make_contact(session, topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    session.add(Delivery(campaign_id=campaign.id, contact_id=contact.id))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_a_campaign_cannot_be_started_twice(session):
    topic = make_topic(session)
    make_contact(session, topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    with pytest.raises(CampaignStateError):
        campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)


def test_campaign_with_nobody_to_mail_is_sent_at_once(session):
    topic = make_topic(session)
    make_contact(session, anchor=date(2019, 1, 1), topics=[topic])
    campaign = make_campaign(session, topic)
    assert campaigns.start(session, campaign, now=NOW, today=TODAY, years=5) == 0
    assert campaign.status is CampaignStatus.SENT


def test_draft_figures_preview_the_audience(session):
    topic = make_topic(session)
    make_contact(session, topics=[topic])
    make_contact(session, anchor=date(2019, 1, 1), topics=[topic])
    report = campaigns.stats(session, make_campaign(session, topic), today=TODAY, years=5)
    assert report["status"] == "draft"
    assert report["audience"] == 1
    assert report["excluded"] == {"window_expired": 1}
    assert report["sent"] == 0


def test_batches_cover_every_queued_delivery_once(session):
    topic = make_topic(session)
    for i in range(23):
        make_contact(session, f"b{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    batches = list(campaigns.queued_batches(session, campaign.id, 10))
    assert [len(b) for b in batches] == [10, 10, 3]
    ids = [i for b in batches for i in b]
    assert len(set(ids)) == 23
    assert set(ids) == set(
        session.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.QUEUED))
    )


def test_create_checks_the_templates_and_the_topic(session):
    make_topic(session, slug="news")
    with pytest.raises(InvalidInput) as error:
        campaigns.create(
            session, topic_slug="news", variants={"nl": ("Hi", "<p>{% if %}</p>", None)}
        )
    assert error.value.field == "html"
    with pytest.raises(NotFound):
        campaigns.create(session, topic_slug="nope", variants={"nl": ("Hi", "<p>x</p>", None)})
    with pytest.raises(InvalidInput) as error:
        campaigns.create(session, topic_slug="news", variants={"de": ("Hi", "<p>x</p>", None)})
    assert error.value.field == "language"


# --- the admin composer -----------------------------------------------------------------


def test_variant_problems_names_every_bad_field_with_its_language(session):
    topic = make_topic(session)
    problems = campaigns.variant_problems(
        session,
        topic_slug=topic.slug,
        variants={
            "nl": ("", "<p>ok</p>", None),
            "fr": ("Sujet", "<p>{{ contact.first_name </p>", None),
            "en": ("Subject", "<p>fine</p>", None),
        },
    )
    assert set(problems) == {("nl", "subject"), ("fr", "html")}


def test_variant_problems_asks_for_a_topic_and_a_language(session):
    problems = campaigns.variant_problems(session, topic_slug="nope", variants={})
    assert set(problems) == {(None, "topic"), (None, "variants")}


def test_revise_replaces_a_drafts_variants_and_refuses_once_sending(session):
    topic = make_topic(session)
    other = make_topic(session)
    campaign = make_campaign(session, topic)
    campaigns.revise(
        session,
        campaign,
        topic_slug=other.slug,
        variants={"fr": ("Nouveau", "<p>Bonjour</p>", None), "nl": ("Nieuw", "<p>Dag</p>", None)},
    )
    session.expire_all()
    assert campaign.topic_id == other.id
    assert sorted(v.subject for v in campaign.variants) == ["Nieuw", "Nouveau"]
    assert campaign.default_language.value == "nl"
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    with pytest.raises(CampaignStateError):
        campaigns.revise(
            session, campaign, topic_slug=topic.slug, variants={"nl": ("x", "<p>y</p>", None)}
        )


def test_timeline_lists_sends_and_the_first_unsubscribe_after_each(session):
    from datetime import timedelta

    from prefsvc.consent import changes as consent

    topic = make_topic(session)
    ana = make_contact(session, "ana@example.org", topics=[topic])
    make_contact(session, "bram@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    sent_at = NOW + timedelta(minutes=1)
    session.execute(
        Delivery.__table__.update()
        .where(Delivery.campaign_id == campaign.id)
        .values(status=DeliveryStatus.SENT, sent_at=sent_at)
    )
    later = NOW + timedelta(hours=2)
    consent.unsubscribe(session, ana, topic, channel="one-click", now=later, today=TODAY)
    points = campaigns.timeline(session, campaign)
    assert points == [(sent_at, "sent"), (sent_at, "sent"), (later, "unsubscribed")]


def _launchable(session, n: int):
    topic = make_topic(session)
    for i in range(n):
        make_contact(session, f"l{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    session.commit()
    return campaign


def test_launch_commits_the_fan_out_together_with_its_batch_jobs(session):
    campaign = _launchable(session, 5)

    size = campaigns.launch(session, campaign.id, now=NOW, today=TODAY, years=5, batch_size=2)

    assert size == 5
    with session.get_bind().connect() as other:  # another transaction, as a relay's
        batches = [r.args[0] for r in other.execute(select(OutboxJob.args).order_by(OutboxJob.id))]
        visible = other.scalar(select(func.count()).select_from(Delivery))
    assert [len(b) for b in batches] == [2, 2, 1] and visible == 5
    assert campaigns.get(session, campaign.id).status is CampaignStatus.SENDING


def test_requeue_queues_only_what_is_still_queued(session):
    campaign = _launchable(session, 5)
    campaigns.launch(session, campaign.id, now=NOW, today=TODAY, years=5, batch_size=10)
    session.execute(delete(OutboxJob))  # relayed
    first = session.scalars(select(Delivery).order_by(Delivery.id)).first()
    first.status = DeliveryStatus.SENT
    session.commit()

    count = campaigns.requeue(session, campaign.id, batch_size=2, now=NOW)

    batches = [args[0] for args in outbox.held(session, "send_batch")]
    assert count == 4 and [len(b) for b in batches] == [2, 2]
    assert first.id not in [i for b in batches for i in b]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_send_wait_draws_a_progress_bar_on_a_terminal_and_ends_at_100_percent(session, settings):
    """``campaigns send --wait`` with stderr on a terminal (a pty) shows the bar to 100 %."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    topic = make_topic(session)
    for i in range(30):
        make_contact(session, f"c{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    session.commit()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PREFSVC_INSTANCE_PATH": str(settings.instance_path),
        "PREFSVC_DATABASE_URL": settings.database_url,
        "PREFSVC_MAIL_URL": settings.mail_url,
        "PREFSVC_SECRET_KEYS": ",".join(settings.secret_keys),
        "PREFSVC_SUPPRESSION_KEY": settings.suppression_key,
        "COLUMNS": "100",
    }
    terminal, child_side = pty.openpty()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefsvc"), "campaigns", "send", str(campaign.id)]
        + ["--wait"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=child_side,
    )
    os.close(child_side)
    seen = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child closed its end of the pty
            break
        if not chunk:
            break
        seen += chunk
    process.wait(timeout=60)
    os.close(terminal)

    assert process.returncode == 0, seen
    text = seen.decode(errors="replace")
    assert "30 recipients queued" in text
    assert "sending" in text and "100%" in text
    session.expire_all()
    assert campaigns.get(session, campaign.id).status is CampaignStatus.SENT


# --- Markdown, preheader, duplicate, delete a draft, archive ----------------------------


def _markdown_campaign(session):
    make_topic(session, slug="haven")
    return campaigns.create(
        session,
        topic_slug="haven",
        variants={
            "nl": ("Nieuws", "# Hallo {{ contact.first_name }}", None),
            "fr": ("Nouvelles", "# Bonjour {{ contact.first_name }}", None),
        },
        content_format="markdown",
        preheaders={"nl": "Vijf nieuwe cursussen", "fr": "  "},
        fallback="none",
        name="Maart",
    )


def test_a_markdown_campaign_keeps_its_format_and_preheaders(session):
    campaign = _markdown_campaign(session)
    assert campaign.content_format.value == "markdown"
    assert {v.language.value: v.preheader for v in campaign.variants} == {
        "nl": "Vijf nieuwe cursussen",
        "fr": None,
    }
    assert campaign.label == "Maart"


def test_a_broken_markdown_template_or_preheader_is_refused(session):
    make_topic(session, slug="haven")
    with pytest.raises(InvalidInput) as refused:
        campaigns.create(
            session,
            topic_slug="haven",
            variants={"nl": ("Nieuws", "Hallo", None)},
            content_format="markdown",
            preheaders={"nl": "{% if %}"},
        )
    assert refused.value.field == "preheader"
    with pytest.raises(InvalidInput) as refused:
        campaigns.create(
            session, topic_slug="haven", variants={"nl": ("N", "H", None)}, content_format="rtf"
        )
    assert refused.value.field == "content_format"


def test_duplicating_a_sent_campaign_makes_a_draft_with_the_same_content(session):
    original = _markdown_campaign(session)
    campaigns.start(session, original, now=NOW, today=TODAY, years=5)

    copy = campaigns.duplicate(session, original)

    assert copy.id != original.id and copy.status is CampaignStatus.DRAFT
    assert copy.name == "Maart (copy)" and copy.topic_id == original.topic_id
    assert copy.content_format == original.content_format
    assert copy.fallback_language is None
    assert [(v.language, v.subject, v.preheader, v.html) for v in copy.variants] == [
        (v.language, v.subject, v.preheader, v.html) for v in original.variants
    ]
    assert copy.audience_size is None and copy.queued_at is None


def test_a_campaign_without_a_name_is_copied_under_its_subject(session):
    copy = campaigns.duplicate(session, make_campaign(session, make_topic(session), subject="Juni"))
    assert copy.name == "Juni (copy)"


def test_only_a_draft_can_be_deleted(session):
    draft = make_campaign(session, make_topic(session))
    campaigns.delete_draft(session, draft)
    with pytest.raises(NotFound):
        campaigns.get(session, draft.id)

    sent = _markdown_campaign(session)
    campaigns.start(session, sent, now=NOW, today=TODAY, years=5)
    with pytest.raises(CampaignStateError, match="only a draft"):
        campaigns.delete_draft(session, sent)
    assert campaigns.get(session, sent.id) is sent


def test_an_archived_campaign_leaves_the_default_list_but_keeps_its_figures(session):
    topic = make_topic(session)
    kept = make_campaign(session, topic)
    done = make_campaign(session, topic)
    campaigns.start(session, done, now=NOW, today=TODAY, years=5)
    with pytest.raises(CampaignStateError, match="sent or cancelled"):
        campaigns.archive(session, kept, now=NOW)

    campaigns.archive(session, done, now=NOW)

    assert done.archived_at == NOW
    assert [c.id for c in campaigns.recent(session)] == [kept.id]
    assert [c.id for c in campaigns.recent(session, archived=True)] == [done.id]
    assert campaigns.search(session)[1] == 1 and campaigns.search(session, archived=None)[1] == 2
    assert campaigns.stats(session, done, today=TODAY, years=5)["archived"] is True
    campaigns.unarchive(session, done)
    assert len(campaigns.recent(session)) == 2
