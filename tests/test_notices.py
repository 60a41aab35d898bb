"""Service messages: queued by kind and contact id, built and sent by a worker."""

from __future__ import annotations

import pytest

from prefsvc import notices, tasks
from prefsvc.notices import Notice
from tests.factories import make_contact


@pytest.fixture
def greeting_kind():
    def build(session, contact, settings, params):
        return Notice(subject=f"Hallo {contact.first_name}", text=f"Code {params['code']}\n")

    notices.register("test-greeting", build)
    yield "test-greeting"
    notices._builders.pop("test-greeting")


@pytest.mark.all_brokers
def test_a_queued_notice_reaches_the_contact(app, session, outbox, greeting_kind, broker_kind):
    ana = make_contact(session, "ana@example.org", first_name="Ana")
    session.commit()

    queue = tasks.queue()
    queue.send_notice(greeting_kind, ana.id, {"code": "42"})
    if broker_kind == "stub":
        queue.join(timeout_ms=10_000)
    else:
        import dramatiq

        worker = dramatiq.Worker(queue.broker, worker_threads=1, worker_timeout=100)
        worker.start()
        queue.broker.join(queue.notice_queue, timeout=20_000)
        worker.join()
        worker.stop()

    [message] = outbox()
    assert message["To"] == "ana@example.org"
    assert message["Subject"] == "Hallo Ana"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None
    assert message.get_content().strip() == "Code 42"


def test_an_erased_contact_gets_no_notice(app, session, outbox, greeting_kind, clock):
    ana = make_contact(session, "ana@example.org")
    ana.email = None
    session.commit()

    sent = notices.deliver(
        session,
        app.extensions["prefsvc.settings"],
        kind=greeting_kind,
        contact_id=ana.id,
        params={"code": "1"},
        now=clock(),
    )
    assert sent is None
    assert outbox() == []


def test_an_unknown_kind_is_refused(app, session, clock):
    ana = make_contact(session)
    with pytest.raises(ValueError, match="unknown notice kind"):
        notices.deliver(
            session,
            app.extensions["prefsvc.settings"],
            kind="nope",
            contact_id=ana.id,
            params={},
            now=clock(),
        )


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

    queue = tasks.queue()
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
