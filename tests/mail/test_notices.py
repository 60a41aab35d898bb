"""Service messages: queued by kind and contact id, built and sent by a worker."""

from __future__ import annotations

import pytest

from prefsvc.mail import kit, notice_kinds, notices
from prefsvc.queue import broker
from tests.factories import make_contact


@pytest.mark.all_brokers
def test_a_queued_notice_reaches_the_contact(app, session, outbox, greeting_kind, broker_kind):
    ana = make_contact(session, "ana@example.org", first_name="Ana")
    session.commit()

    queue = broker.queue()
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


def test_a_notice_reaches_a_contact_with_an_international_address(
    app, session, outbox, greeting_kind, clock
):
    zoe = make_contact(session, "zoë@exämple.be", first_name="Zoë")
    session.commit()

    notice_kinds.deliver(
        session,
        app.extensions["prefsvc.settings"],
        kind=greeting_kind,
        contact_id=zoe.id,
        params={"code": "7"},
        now=clock(),
    )

    [message] = outbox()
    assert message["To"] == "zoë@xn--exmple-cua.be"
    assert message["Subject"] == "Hallo Zoë"


def test_an_erased_contact_gets_no_notice(app, session, outbox, greeting_kind, clock):
    ana = make_contact(session, "ana@example.org")
    ana.email = None
    session.commit()

    sent = notice_kinds.deliver(
        session,
        app.extensions["prefsvc.settings"],
        kind=greeting_kind,
        contact_id=ana.id,
        params={"code": "1"},
        now=clock(),
    )
    assert sent is None
    assert outbox() == []


def test_no_transaction_stays_open_while_the_mail_server_answers(
    app, session, greeting_kind, clock, monkeypatch
):

    ana = make_contact(session, "ana@example.org", first_name="Ana")
    session.commit()
    open_during_send = []

    class Recording:
        def send(self, *, sender, recipients, message):
            open_during_send.append(session().in_transaction())

    monkeypatch.setattr(kit, "transport", lambda settings: Recording())
    notice_kinds.deliver(
        session,
        app.extensions["prefsvc.settings"],
        kind=greeting_kind,
        contact_id=ana.id,
        params={"code": "7"},
        now=clock(),
    )
    assert open_during_send == [False]


def test_an_unknown_kind_is_refused(app, session, clock):
    ana = make_contact(session)
    with pytest.raises(ValueError, match="unknown notice kind"):
        notice_kinds.deliver(
            session,
            app.extensions["prefsvc.settings"],
            kind="nope",
            contact_id=ana.id,
            params={},
            now=clock(),
        )


# --- the outbox ---------------------------------------------------------------------------


def _held(session) -> list[tuple[str, int]]:
    from prefsvc.queue import outbox

    return [(kind, contact_id) for kind, contact_id, _ in outbox.held(session, notices.ACTOR)]


@pytest.mark.all_brokers
def test_a_one_click_acknowledgement_is_sent_by_the_relay_of_a_worker(
    app, client, session, settings, outbox, broker_kind
):
    """The web holds the acknowledgement; the first worker process to look queues and sends it."""
    import time

    import dramatiq

    from prefsvc.mail.tokens import Signer
    from tests.factories import make_topic

    topic = make_topic(session)
    ana = make_contact(session, "ana@example.org", topics=[topic])
    session.commit()
    link = f"/u/{Signer(settings.secret_keys).unsubscribe_token(ana.public_id, topic.id)}"
    assert client.post(link, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    queue = broker.queue()
    if broker_kind == "stub":
        queue.join(timeout_ms=10_000)  # the in-process relay, woken by the POST
    else:
        assert _held(session) == [("optout_ack", ana.id)]  # no worker yet: held, not lost
        session.commit()
        worker = dramatiq.Worker(queue.broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            deadline = time.monotonic() + 20
            while not outbox() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            worker.stop()

    [mail] = outbox()
    assert mail["To"] == "ana@example.org"
    assert mail["Subject"] == "Uw uitschrijving is bevestigd"
    session.rollback()
    assert _held(session) == []
