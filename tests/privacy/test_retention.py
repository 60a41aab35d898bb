"""Retention: anonymise after the window plus the grace period; a dry run changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from prefsvc.campaigns import audience, campaigns
from prefsvc.consent import changes as consent
from prefsvc.consent import ledger, suppression
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    EventKind,
    RetentionRun,
    Subscription,
    SubscriptionStatus,
)
from prefsvc.privacy import erasure, retention
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases

YEARS = 5
GRACE = 30
# An anchor on 1 January 2021 expires on 1 January 2026; grace ends on the 30th day after.
EXPIRED_ANCHOR = date(2021, 1, 1)
FIRST_DAY_DUE = date(2026, 1, 31)


def _run(session, today: date, *, dry_run: bool = False, now: datetime | None = None):
    return retention.run(
        session,
        today=today,
        now=now or datetime.combine(today, datetime.min.time(), tzinfo=UTC),
        years=YEARS,
        grace_days=GRACE,
        dry_run=dry_run,
    )


@pytest.fixture
def people(session):
    topic = make_topic(session, slug="nieuws")
    contacts = {
        "expired": make_contact(session, "old@example.org", anchor=EXPIRED_ANCHOR, topics=[topic]),
        "in_grace": make_contact(session, "grace@example.org", anchor=date(2021, 1, 2)),
        "open": make_contact(session, "new@example.org", anchor=date(2025, 6, 1), topics=[topic]),
    }
    session.commit()
    return contacts


def _snapshot(session) -> list[tuple]:
    contacts = session.execute(
        select(Contact.id, Contact.email, Contact.first_name, Contact.status).order_by(Contact.id)
    ).all()
    subs = session.scalar(select(func.count()).select_from(Subscription))
    events = session.scalar(select(func.count()).select_from(ConsentEvent))
    return [tuple(r) for r in contacts] + [(subs, events)]


@pytest.mark.parametrize(
    ("today", "due"),
    [(date(2026, 1, 30), False), (FIRST_DAY_DUE, True), (date(2026, 2, 1), True)],
)
def test_contact_is_due_from_the_last_day_of_the_grace_period(session, people, today, due):
    planned = retention.plan(session, today=today, years=YEARS, grace_days=GRACE)

    expected = [people["expired"].public_id] if due else []
    assert [c.public_id for c in planned if c.window_anchor == EXPIRED_ANCHOR] == expected


def test_plan_names_anchor_expiry_and_reason(session, people):
    [candidate] = retention.plan(session, today=FIRST_DAY_DUE, years=YEARS, grace_days=GRACE)

    assert candidate == retention.Candidate(
        contact_id=people["expired"].id,
        public_id=people["expired"].public_id,
        window_anchor=EXPIRED_ANCHOR,
        expired_on=date(2026, 1, 1),
        reason="window_expired",
    )


def test_dry_run_changes_nothing_but_is_recorded(session, people):
    before = _snapshot(session)

    report = _run(session, FIRST_DAY_DUE, dry_run=True)
    session.commit()

    assert _snapshot(session) == before
    assert (report.dry_run, len(report.candidates), report.anonymised) == (True, 1, 0)
    run = session.get(RetentionRun, report.run_id)
    assert (run.dry_run, run.candidates, run.anonymised) == (True, 1, 0)


def test_run_anonymises_exactly_the_contacts_past_grace(session, people, settings):
    expired = people["expired"]

    report = _run(session, FIRST_DAY_DUE)
    session.commit()

    assert report.anonymised == 1
    assert expired.status is ContactStatus.ANONYMISED
    for name in erasure.PERSONAL_FIELDS:
        assert getattr(expired, name) is None, name
    assert (
        session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.contact_id == expired.id)
        )
        == 0
    )
    for name in ("in_grace", "open"):
        assert people[name].status is ContactStatus.ACTIVE and people[name].email is not None
    last = session.scalar(select(ConsentEvent).order_by(ConsentEvent.seq.desc()).limit(1))
    assert (last.kind, last.contact_id, last.channel) == (
        EventKind.ANONYMISED,
        expired.id,
        "retention",
    )
    assert last.detail == {"reason": "window_expired", "run": report.run_id, "kept": []}
    assert ledger.verify(session).ok
    run = session.get(RetentionRun, report.run_id)
    assert (run.dry_run, run.candidates, run.anonymised, run.run_on) == (
        False,
        1,
        1,
        FIRST_DAY_DUE,
    )


def test_expiry_is_not_an_objection_the_address_may_come_back(session, people, settings):
    _run(session, FIRST_DAY_DUE)
    session.commit()

    assert not suppression.is_suppressed(session, settings.suppression_key, "old@example.org")
    again = make_contact(session, "old@example.org", anchor=date(2026, 2, 1))
    session.commit()
    assert again.id != people["expired"].id


def test_a_second_run_finds_nothing_more(session, people):
    _run(session, FIRST_DAY_DUE)
    session.commit()

    report = _run(session, FIRST_DAY_DUE)

    assert (report.candidates, report.anonymised) == ([], 0)
    assert session.scalar(select(func.count()).select_from(RetentionRun)) == 2


def test_objecting_contacts_are_anonymised_and_stay_suppressed(session, settings, clock, people):
    objector = make_contact(session, "no@example.org", anchor=EXPIRED_ANCHOR)
    consent.object_to_all(
        session, objector, channel="web", now=clock(), suppression_key=settings.suppression_key
    )
    erased = make_contact(session, "gone@example.org", anchor=EXPIRED_ANCHOR)
    erasure.erase(session, erased, settings=settings, now=clock())
    session.commit()

    report = _run(session, FIRST_DAY_DUE)

    anonymised = {c.public_id for c in report.candidates}
    assert anonymised == {people["expired"].public_id, objector.public_id}
    assert objector.status is ContactStatus.ANONYMISED and objector.email is None
    assert erased.status is ContactStatus.ERASED
    assert suppression.is_suppressed(session, settings.suppression_key, "no@example.org")


def test_a_contact_renewed_after_planning_is_left_alone(session, people):
    people["expired"].window_anchor = date(2026, 1, 20)  # renewed since the plan was made
    session.commit()

    report = _run(session, FIRST_DAY_DUE)

    assert report.anonymised == 0
    assert people["expired"].email == "old@example.org"


def test_legal_hold_data_is_cleared_once_the_hold_ends(session, people):
    held = people["expired"]
    held.organisation = "Haven NV"
    held.legal_hold_reason = "training certificate, 7 years"
    held.legal_hold_until = date(2027, 6, 30)
    session.commit()

    _run(session, FIRST_DAY_DUE)
    session.commit()
    assert held.status is ContactStatus.ANONYMISED
    assert held.email is None
    assert (held.first_name, held.organisation) == ("Ana", "Haven NV")

    def held_plan(today: date) -> list[str]:
        planned = retention.plan(session, today=today, years=YEARS, grace_days=GRACE)
        return [c.reason for c in planned if c.contact_id == held.id]

    assert held_plan(date(2027, 6, 30)) == []  # the hold's last day
    assert held_plan(date(2027, 7, 1)) == ["legal_hold_ended"]
    _run(session, date(2027, 7, 1))
    session.commit()

    assert (held.first_name, held.last_name, held.organisation) == (None, None, None)
    assert held.status is ContactStatus.ANONYMISED


def test_cli_dry_run_lists_public_ids_and_anchors(session, people, clock, runner):
    clock.set(datetime(2026, 1, 30, 23, 30, tzinfo=UTC))  # already 31 January in Brussels
    before = _snapshot(session)

    result = runner.invoke(args=["retention", "run", "--dry-run"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["dry_run"], report["run_on"], report["anonymised"]) == (True, "2026-01-31", 0)
    assert report["contacts"] == [
        {
            "public_id": people["expired"].public_id,
            "window_anchor": "2021-01-01",
            "expired_on": "2026-01-01",
            "reason": "window_expired",
        }
    ]
    session.expire_all()
    assert _snapshot(session) == before


def test_cli_run_anonymises_with_the_grace_setting(session, people, clock, runner):
    clock.set(datetime(2026, 1, 31, 9, 0, tzinfo=UTC))

    result = runner.invoke(args=["retention", "run"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["anonymised"] == 1
    session.expire_all()
    assert session.get(Contact, people["expired"].id).status is ContactStatus.ANONYMISED


@pytest.mark.parametrize("how", ["anonymised", "erased"])
def test_contact_removed_while_a_campaign_is_sending_is_not_mailed(
    app, session, settings, clock, run_campaign, outbox, how
):
    from prefsvc.queue import broker

    topic = make_topic(session, slug="nieuwe-opleidingen", name="Nieuwe opleidingen")
    people = [
        make_contact(session, f"person{i}@example.org", anchor=date(2025, 1, 1), topics=[topic])
        for i in range(3)
    ]
    campaign = make_campaign(session, topic)
    session.commit()
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=YEARS)
    leaver = people[1]
    if how == "anonymised":
        retention.anonymise(session, leaver, now=clock(), today=date(2026, 3, 10))
    else:
        erasure.erase(session, leaver, settings=settings, now=clock())
    session.commit()

    for batch in campaigns.queued_batches(session, campaign.id, 100):
        broker.queue().send_batch(batch)
    finished = run_campaign(campaign.id, launch=False)

    assert sorted(m["To"] for m in outbox()) == ["person0@example.org", "person2@example.org"]
    report = campaigns.stats(session, finished, today=date(2026, 3, 10), years=YEARS)
    assert (report["sent"], report["excluded"]) == (2, {audience.SUPPRESSED: 1})


def test_anonymised_contact_is_excluded_by_the_audience_rule(session, people, clock):
    expired = people["expired"]
    expired.window_anchor = date(2025, 1, 1)  # even with an open window
    retention.anonymise(session, expired, now=clock(), today=date(2026, 3, 10))

    assert (
        audience.reason_for(
            expired, SubscriptionStatus.SUBSCRIBED, on=date(2026, 3, 10), years=YEARS
        )
        == audience.SUPPRESSED
    )


def test_an_anonymised_person_imported_again_with_a_new_enrolment_starts_a_fresh_window(
    session, settings, clock
):
    """Expiry is not an objection; an objection or an erasure is, and outlives anonymisation."""
    from prefsvc.people import importing

    topic = make_topic(session, slug="nieuwe-opleidingen")
    make_contact(session, "back@example.org", anchor=EXPIRED_ANCHOR, topics=[topic])
    objector = make_contact(session, "no@example.org", anchor=EXPIRED_ANCHOR, topics=[topic])
    consent.object_to_all(
        session, objector, channel="web", now=clock(), suppression_key=settings.suppression_key
    )
    erased = make_contact(session, "gone@example.org", anchor=EXPIRED_ANCHOR, topics=[topic])
    erasure.erase(session, erased, settings=settings, now=clock())
    session.commit()
    assert _run(session, FIRST_DAY_DUE).anonymised == 2
    session.commit()

    result = importing.import_csv(
        session,
        (
            b"email,topics,basis,basis_date\n"
            b"back@example.org,nieuwe-opleidingen,training,2026-02-02\n"
            b"no@example.org,nieuwe-opleidingen,training,2026-02-02\n"
            b"gone@example.org,nieuwe-opleidingen,training,2026-02-02\n"
        ),
        filename="enrolments.csv",
        now=clock(),
        today=date(2026, 3, 10),
        suppression_key=settings.suppression_key,
    )
    session.commit()

    assert (result.created, result.suppressed) == (1, 2)
    fresh = session.scalar(select(Contact).where(Contact.email == "back@example.org"))
    assert (fresh.status, fresh.window_anchor) == (ContactStatus.ACTIVE, date(2026, 2, 2))
    assert (
        audience.reason_for(fresh, SubscriptionStatus.SUBSCRIBED, on=date(2026, 3, 10), years=YEARS)
        is None
    )
    emails = set(session.scalars(select(Contact.email).where(Contact.email.is_not(None))))
    assert emails == {"back@example.org"}


def test_the_webhook_delivery_log_is_kept_for_webhook_log_days_then_deleted(session, clock):
    from datetime import timedelta

    from prefsvc.models import WebhookDelivery, WebhookDeliveryStatus
    from prefsvc.webhooks import endpoints

    now = clock()
    endpoint = endpoints.create(session, "https://crm.example.org/h", ["contact.updated"], now=now)
    session.flush()
    ages = {
        "delivered_old": (WebhookDeliveryStatus.DELIVERED, 31),
        "given_up_old": (WebhookDeliveryStatus.FAILED, 40),
        "delivered_recent": (WebhookDeliveryStatus.DELIVERED, 29),
        "pending_old": (WebhookDeliveryStatus.PENDING, 45),  # still owed: never pruned
    }
    for name, (status, days) in ages.items():
        at = now - timedelta(days=days)
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                message_id=f"msg_{name}",
                event="contact.updated",
                payload={},
                status=status,
                pending_since=at,
                next_attempt_at=at,
                last_attempt_at=at,
            )
        )
    session.commit()

    report = retention.run(
        session,
        today=now.date(),
        now=now,
        years=YEARS,
        grace_days=GRACE,
        dry_run=False,
        webhook_log_days=30,
    )
    session.commit()

    assert report.webhook_deliveries_deleted == 2
    assert report.as_dict()["webhook_deliveries_deleted"] == 2
    left = set(session.scalars(select(WebhookDelivery.message_id)))
    assert left == {"msg_delivered_recent", "msg_pending_old"}


def test_retention_deletes_import_jobs_finished_before_import_keep_days_with_their_rows(
    session, tmp_path
):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from prefsvc.models import ImportJob, ImportJobRow, ImportStatus
    from prefsvc.people.importing import jobs as import_jobs

    now = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    files = import_jobs.folder(tmp_path)
    (files / "old.csv").write_text("email\nx@example.org\n")

    def job(status, finished_days_ago, stored=None):
        finished = (
            now - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
        )
        made = ImportJob(
            status=status,
            dry_run=stored is not None,
            filename="leads.csv",
            stored_name=stored,
            size_bytes=1,
            source="admin",
            created_at=now - timedelta(days=60),
            finished_at=finished,
        )
        session.add(made)
        session.flush()
        session.add(
            ImportJobRow(
                job_id=made.id,
                line=2,
                kind="rejected",
                field="email",
                code="invalid_email",
                params={},
            )
        )
        return made

    job(ImportStatus.DONE, 31, stored="old.csv")  # finished 31 days ago: deleted
    recent = job(ImportStatus.FAILED, 29)
    running = job(ImportStatus.RUNNING, None)
    session.commit()
    kept = {recent.id, running.id}
    deleted = import_jobs.prune(session, files, now=now, keep_days=30)
    session.commit()
    assert deleted == 1
    assert set(session.scalars(select(ImportJob.id))) == kept
    assert session.scalar(select(func.count()).select_from(ImportJobRow)) == 2
    assert not (files / "old.csv").exists()
