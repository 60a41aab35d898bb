"""The job outbox: jobs committed with their change, relayed once, oldest first, never lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from prefsvc.extensions import db
from prefsvc.queue import outbox

ACTORS = ("send_batch", "send_notice")


class Broker(list):
    """Records what a relay queues: ``(actor, [args, ...])`` per call."""

    def __call__(self, actor, jobs):
        self.append((actor, jobs))


@pytest.mark.all_databases
def test_held_jobs_are_queued_oldest_first_in_runs_of_one_actor_and_once(session, clock):
    for args in (["a", 1, {}], ["b", 2, {}]):
        outbox.add(session, "send_notice", args, now=clock())
    outbox.add(session, "send_batch", [[1, 2]], now=clock())
    outbox.add(session, "send_notice", ["c", 3, {}], now=clock())
    session.commit()
    queued = Broker()

    assert outbox.release(session, queued, actors=ACTORS, limit=3) == 3
    assert outbox.release(session, queued, actors=ACTORS) == 1
    assert outbox.release(session, queued, actors=ACTORS) == 0

    assert queued == [
        ("send_notice", [["a", 1, {}], ["b", 2, {}]]),
        ("send_batch", [[[1, 2]]]),
        ("send_notice", [["c", 3, {}]]),
    ]


@pytest.mark.all_databases
def test_jobs_stay_held_while_the_broker_is_down_and_none_is_queued_twice(session, clock):
    """A broker that fails half-way: what it took is gone from the outbox, the rest waits."""
    outbox.add(session, "send_batch", [[1]], now=clock())
    outbox.add(session, "send_notice", ["a", 1, {}], now=clock())
    session.commit()
    taken = Broker()

    def fails_on_notices(actor, jobs):
        if actor == "send_notice":
            raise ConnectionError("broker down")
        taken(actor, jobs)

    with pytest.raises(ConnectionError):
        outbox.release(session, fails_on_notices, actors=ACTORS)

    assert taken == [("send_batch", [[[1]]])]
    assert outbox.held(session, "send_batch") == []
    assert outbox.held(session, "send_notice") == [["a", 1, {}]]
    later = clock() + timedelta(minutes=2)
    assert outbox.waiting(session, now=later, older_than=timedelta(seconds=60)) == (1, clock())


def test_jobs_of_an_actor_this_process_does_not_know_wait_for_one_that_does(session, clock):
    outbox.add(session, "send_webhook", [7], now=clock())
    session.commit()
    assert outbox.release(session, Broker(), actors=ACTORS) == 0
    assert outbox.held(session, "send_webhook") == [[7]]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_relays_of_two_worker_processes_never_take_the_same_job(app, session, clock, backend):
    for i in range(4):
        outbox.add(session, "send_batch", [[i]], now=clock())
    session.commit()
    first, second = Broker(), Broker()
    with Session(db.engine) as other:
        rows = outbox.OUTBOX.select().order_by(outbox.OUTBOX.c.id).limit(2).with_for_update()
        session.execute(rows)  # the first relay holds two rows...
        assert outbox.release(other, second, actors=ACTORS) == 2  # ...the other skips them
        session.commit()
        assert outbox.release(session, first, actors=ACTORS) == 2

    assert first == [("send_batch", [[[0]], [[1]]])]
    assert second == [("send_batch", [[[2]], [[3]]])]
