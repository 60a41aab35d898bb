"""The actors: names, queues and priorities, retries and deferrals, notices sent together."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import dramatiq
import pytest

from prefsvc.campaigns import delivery
from prefsvc.errors import TemporaryBatchFailure
from prefsvc.mail import notice_kinds, notices
from prefsvc.mail.notices import Notice
from prefsvc.mail.transport import PermanentFailure, TemporaryFailure
from prefsvc.queue import actors, broker
from tests.factories import make_contact


def test_the_actors_keep_their_names_queues_and_notices_go_first(app, settings):
    queue = broker.queue()
    declared = {name: (actor.queue_name, actor.priority) for name, actor in queue.actors.items()}
    assert declared == {
        "send_batch": (f"{settings.queue_prefix}send", actors.CAMPAIGN_PRIORITY),
        "send_notice": (f"{settings.queue_prefix}notices", actors.NOTICE_PRIORITY),
        "send_notices": (f"{settings.queue_prefix}notices", actors.NOTICE_PRIORITY),
        "deliver_webhooks": (f"{settings.queue_prefix}webhooks", actors.NOTICE_PRIORITY),
        # imports wait behind service mail on the notices queue, and may run for hours
        "run_import": (f"{settings.queue_prefix}notices", actors.CAMPAIGN_PRIORITY),
    }
    assert queue.actors["run_import"].options["time_limit"] == actors.IMPORT_TIME_LIMIT_MS
    assert [a.actor_name for a in queue.actors.values()] == list(declared)
    assert actors.NOTICE_PRIORITY < actors.CAMPAIGN_PRIORITY  # a lower number goes first
    retries = {name: a.options["max_retries"] for name, a in queue.actors.items()}
    # webhook retries are kept in the database (prefsvc.webhooks.delivery), not the broker
    assert retries == dict.fromkeys(declared, settings.max_retries) | {"deliver_webhooks": 0}


@pytest.fixture
def later(app, monkeypatch) -> list[tuple[str, tuple, int]]:
    """Record the jobs an actor queues for later, instead of queueing them."""
    jobs: list[tuple[str, tuple, int]] = []
    for name, actor in broker.queue().actors.items():
        monkeypatch.setattr(
            actor,
            "send_with_options",
            lambda args, delay, name=name: jobs.append((name, tuple(args), delay)),
        )
    return jobs


def test_a_temporary_batch_failure_is_retried_after_the_delay_it_names(app, monkeypatch):
    def deliver(session, ids, **options):
        raise TemporaryBatchFailure("greylisted", retry_after_ms=30_000)

    monkeypatch.setattr(delivery, "deliver", deliver)
    with pytest.raises(dramatiq.Retry) as retry:
        actors.send_batch([1, 2])
    assert retry.value.delay == 30_000


def test_deliveries_held_back_by_a_rate_limit_go_in_a_new_job_after_the_wait(
    app, monkeypatch, later
):
    held_back = SimpleNamespace(deferred=[2, 3], defer_seconds=1.5)
    monkeypatch.setattr(delivery, "deliver", lambda session, ids, **options: held_back)
    actors.send_batch([1, 2, 3])
    assert later == [("send_batch", ([2, 3],), 1501)]


def test_a_notice_the_server_refuses_for_now_is_retried_and_one_refused_for_good_is_not(
    app, session, monkeypatch, caplog
):
    answers = iter([TemporaryFailure(451, "try later"), PermanentFailure(550, "no such user")])

    def deliver(session, settings, **notice):
        raise next(answers)

    monkeypatch.setattr(notice_kinds, "deliver", deliver)
    with pytest.raises(dramatiq.Retry) as retry:
        actors.send_notice("signin", 7, {})
    assert retry.value.delay == actors.NOTICE_RETRY_DELAY_MS
    with caplog.at_level(logging.WARNING, logger="prefsvc.queue.actors"):
        actors.send_notice("signin", 7, {})  # logged, not raised: retrying cannot help
    assert "notice signin for contact 7 refused: 550" in caplog.text
    assert not session().in_transaction()


def test_a_queued_notice_is_built_and_sent_by_the_actor(app, session, outbox, greeting_kind):
    ana = make_contact(session, "ana@example.org", first_name="Ana")
    session.commit()
    actors.send_notice(greeting_kind, ana.id, {"code": "42"})
    [mail] = outbox()
    assert (mail["To"], mail["Subject"]) == ("ana@example.org", "Hallo Ana")


@pytest.mark.parametrize("broker_kind", ["redis"])
def test_a_notice_goes_before_the_campaign_batches_queued_ahead_of_it(
    app, session, greeting_kind, broker_kind
):
    """A sign-in link or an opt-out acknowledgement must not wait for a campaign to finish."""
    import dramatiq
    from dramatiq.middleware import Middleware

    ana = make_contact(session, "ana@example.org", first_name="Ana")
    session.commit()
    done: list[str] = []

    class Order(Middleware):
        def after_process_message(self, broker, message, *, result=None, exception=None):
            done.append(message.actor_name)

    queue = broker.queue()
    queue.broker.add_middleware(Order())
    for batch in range(6):
        queue.send_batch([10_000 + batch])  # no such deliveries: each job just finds nothing
    queue.send_notice(greeting_kind, ana.id, {"code": "42"})

    worker = dramatiq.Worker(queue.broker, worker_threads=1, worker_timeout=100)
    worker.start()
    queue.broker.join(queue.notice_queue, timeout=20_000)
    queue.broker.join(queue.send_queue, timeout=20_000)
    worker.join()
    worker.stop()

    assert sorted(done) == ["send_batch"] * 6 + ["send_notice"]
    assert done.index("send_notice") <= 1  # the first batch may already be running


def test_released_notices_go_in_one_job_and_one_that_fails_goes_on_alone(
    app, session, outbox, clock, greeting_kind, monkeypatch
):
    from dramatiq.middleware import Middleware

    def build_or_fail(session, contact, settings, params, *, now):
        if params.get("fail"):
            raise ConnectionError("database gone for a moment")
        return Notice(subject=f"Hallo {contact.first_name}", text="Code\n")

    monkeypatch.setitem(notice_kinds.KINDS, "test-flaky", build_or_fail)
    people = [make_contact(session, f"{n}@example.org", first_name=n) for n in "abc"]
    for person in people:
        notices.hold(
            session, "test-flaky", person.id, {"fail": person.email[0] == "b"}, now=clock()
        )
    session.commit()
    queue = broker.queue()
    jobs: list[str] = []
    alone: list[tuple] = []

    class Jobs(Middleware):
        def after_enqueue(self, broker, message, delay):
            jobs.append(message.actor_name)

    queue.broker.add_middleware(Jobs())
    monkeypatch.setattr(
        queue.actors["send_notice"], "send_with_options", lambda args, delay: alone.append(args)
    )
    queue.join(timeout_ms=10_000)

    assert jobs == ["send_notices"]
    assert sorted(m["To"] for m in outbox()) == ["a@example.org", "c@example.org"]
    assert alone == [("test-flaky", people[1].id, {"fail": True})]
