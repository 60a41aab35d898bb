"""Rate limits: no second ever holds more messages than the global or a domain's limit."""

from __future__ import annotations

import uuid

import pytest
import redis

from prefsvc.mail.rate_limits import LocalLimiter, RedisLimiter, for_worker
from tests.conftest import REDIS_URL


class FakeTime:
    """Seconds that pass only when a test says so (or a limiter's caller sleeps)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def most_in_any_second(times: list[float]) -> int:
    """Return the largest number of ``times`` inside any half-open window [t, t + 1)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def drive(limiters, clock: FakeTime, domains: list[str], *, max_wait: float = 2.0):
    """Send one message per entry of ``domains`` the way worker threads do; return send times.

    Every request asks at the same instant (many threads at once); a refused one is asked
    again after the wait the limiter named, as a re-queued delivery would be.
    """
    sent: dict[str, list[float]] = {}
    waiting = list(enumerate(domains))
    rounds = 0
    while waiting:
        rounds += 1
        assert rounds < 10_000
        later = []
        retry_after = None
        for i, (n, domain) in enumerate(waiting):
            slot = limiters[(n + i) % len(limiters)].reserve(domain, max_wait=max_wait)
            if slot.granted:
                sent.setdefault(domain, []).append(clock() + slot.wait)
            else:
                later.append((n, domain))
                retry_after = slot.wait if retry_after is None else min(retry_after, slot.wait)
        waiting = later
        if waiting:
            clock.sleep(retry_after)
    return sent


def test_local_limiter_holds_the_global_and_the_domain_limit():
    clock = FakeTime()
    limiter = LocalLimiter(per_second=8, domain_per_second=2, clock=clock)
    domains = ["gmail.com"] * 20 + ["telenet.be"] * 10 + [f"d{i}.be" for i in range(30)]

    sent = drive([limiter], clock, domains)

    assert sum(len(t) for t in sent.values()) == 60
    assert most_in_any_second([t for times in sent.values() for t in times]) <= 8
    assert most_in_any_second(sent["gmail.com"]) <= 2
    assert most_in_any_second(sent["telenet.be"]) <= 2
    # and the limits are used, not just respected: 20 to gmail.com at 2/s need 10 s at least
    all_times = sorted(t for times in sent.values() for t in times)
    assert all_times[-1] - all_times[0] < 2 * 10


def test_a_slot_further_away_than_max_wait_is_not_reserved():
    clock = FakeTime()
    limiter = LocalLimiter(per_second=None, domain_per_second=1, clock=clock)
    granted = [limiter.reserve("gmail.com", max_wait=2.0) for _ in range(5)]
    assert [s.granted for s in granted] == [True, True, True, False, False]
    assert [s.wait for s in granted[:3]] == [0.0, 1.0, 2.0]
    assert granted[3].wait == 3.0  # the refused ones reserved nothing
    assert limiter.reserve("other.be", max_wait=0).granted  # another domain is free


@pytest.fixture
def redis_prefix():
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    yield client, prefix
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


def test_redis_limiter_holds_the_limits_for_all_worker_processes_together(redis_prefix):
    client, prefix = redis_prefix
    clock = FakeTime(start=1_765_000_000.0)  # an epoch-sized number: precision matters
    processes = [
        RedisLimiter(
            redis.Redis.from_url(REDIS_URL),
            prefix=prefix,
            per_second=8,
            domain_per_second=2,
            clock=clock,
        )
        for _ in range(3)
    ]
    domains = ["gmail.com"] * 20 + [f"d{i}.be" for i in range(28)]

    sent = drive(processes, clock, domains)

    assert sum(len(t) for t in sent.values()) == 48
    assert most_in_any_second([t for times in sent.values() for t in times]) <= 8
    assert most_in_any_second(sent["gmail.com"]) <= 2
    assert client.pttl(f"{prefix}rate:all") > 0  # buckets expire by themselves


def test_redis_limiter_on_the_servers_clock_spaces_messages(redis_prefix):
    client, prefix = redis_prefix
    limiter = RedisLimiter(client, prefix=prefix, per_second=None, domain_per_second=1)
    first = limiter.reserve("gmail.com", max_wait=5)
    second = limiter.reserve("gmail.com", max_wait=5)
    assert first.granted and second.granted
    assert first.wait == 0.0 and 0.9 < second.wait <= 1.0


def test_worker_limiter_is_shared_through_redis_or_divided_by_processes(settings):
    assert for_worker(settings).reserve("x.be", max_wait=0).granted  # no limit: always
    limited = settings.with_(rate_limit=100.0, domain_rate_limit=10.0, worker_processes=4)
    on_redis = for_worker(limited.with_(broker_url=REDIS_URL))
    assert isinstance(on_redis, RedisLimiter)
    on_rabbit = for_worker(limited.with_(broker_url="amqp://guest:guest@127.0.0.1:5672/%2F"))
    assert isinstance(on_rabbit, LocalLimiter)
    assert (on_rabbit._global, on_rabbit._domain) == (1 / 25, 1 / 2.5)
    in_process = for_worker(limited)  # the in-process queue is one process
    assert (in_process._global, in_process._domain) == (1 / 100, 1 / 10)
