"""Sending rate limits: a global one and one per recipient domain, shared by every worker thread.

Both limits are GCRA token buckets with a burst of one message: a limit of N per second lets
a message go every 1/N seconds, so no window of one second ever holds more than N messages.
A worker thread *reserves* the next free slot of both buckets at once and sleeps until it;
if that slot is further away than ``max_wait`` nothing is reserved and the delivery is handed
back to the queue for later, so a slow domain never holds a thread for long.

With a Redis broker the buckets live in Redis (one Lua script, atomic, on the Redis server's
clock), so the limits hold for all worker processes on all machines together. Otherwise each
worker process keeps its own buckets, shared by its threads, with the limits divided by the
number of processes ``prefsvc worker`` runs: right on one machine, and to be divided by hand
when RabbitMQ workers run on several.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prefsvc.settings import Settings


@dataclass(frozen=True)
class Reservation:
    """``granted``: a slot is held, send after ``wait`` seconds; else try again after ``wait``."""

    granted: bool
    wait: float


class Limiter(Protocol):
    def reserve(self, domain: str, *, max_wait: float) -> Reservation: ...


class Unlimited:
    """No limit is set: every message may go at once."""

    def reserve(self, domain: str, *, max_wait: float) -> Reservation:
        return Reservation(True, 0.0)


NO_LIMIT = Unlimited()


class LocalLimiter:
    """Buckets in this process, shared by its threads (a lock around two dict look-ups)."""

    def __init__(
        self,
        *,
        per_second: float | None,
        domain_per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._global = 1.0 / per_second if per_second else None
        self._domain = 1.0 / domain_per_second if domain_per_second else None
        self._clock = clock
        self._lock = threading.Lock()
        self._tat_global = float("-inf")
        self._tat_domain: dict[str, float] = {}

    def reserve(self, domain: str, *, max_wait: float) -> Reservation:
        with self._lock:
            now = self._clock()
            send_at = now
            if self._global is not None:
                send_at = max(send_at, self._tat_global)
            if self._domain is not None:
                send_at = max(send_at, self._tat_domain.get(domain, now))
            wait = send_at - now
            if wait > max_wait:
                return Reservation(False, wait)
            if self._global is not None:
                self._tat_global = max(self._tat_global, send_at) + self._global
            if self._domain is not None:
                if len(self._tat_domain) > 10_000:  # forget domains whose slot has passed
                    self._tat_domain = {d: t for d, t in self._tat_domain.items() if t > now}
                previous = self._tat_domain.get(domain, send_at)
                self._tat_domain[domain] = max(previous, send_at) + self._domain
            return Reservation(True, wait)


# KEYS: the buckets; ARGV: now in seconds ("" = the Redis server's clock), max_wait, then one
# interval (seconds per message) per key. Returns {granted 0/1, wait as a string}.
_RESERVE = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local max_wait = tonumber(ARGV[2])
local send_at = now
local tats = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  tats[i] = tat
  if tat > send_at then send_at = tat end
end
local wait = send_at - now
if wait > max_wait then
  return {0, string.format('%.6f', wait)}
end
for i, key in ipairs(KEYS) do
  local tat = math.max(tats[i], send_at) + tonumber(ARGV[2 + i])
  redis.call('SET', key, string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
return {1, string.format('%.6f', wait)}
"""


class RedisLimiter:
    """Buckets in Redis, shared by every worker process that uses the same Redis and prefix."""

    def __init__(
        self,
        client,
        *,
        prefix: str,
        per_second: float | None,
        domain_per_second: float | None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._client = client
        self._script = client.register_script(_RESERVE)
        self._prefix = prefix
        self._global = 1.0 / per_second if per_second else None
        self._domain = 1.0 / domain_per_second if domain_per_second else None
        self._clock = clock

    def reserve(self, domain: str, *, max_wait: float) -> Reservation:
        keys: list[str] = []
        intervals: list[str] = []
        if self._global is not None:
            keys.append(f"{self._prefix}rate:all")
            intervals.append(repr(self._global))
        if self._domain is not None:
            keys.append(f"{self._prefix}rate:domain:{domain}")
            intervals.append(repr(self._domain))
        now = "" if self._clock is None else repr(self._clock())
        granted, wait = self._script(keys=keys, args=[now, repr(max_wait), *intervals])
        return Reservation(bool(int(granted)), float(wait))


def for_worker(settings: Settings) -> Limiter:
    """Return the limiter a worker process uses for these settings (see the module docstring)."""
    if settings.rate_limit is None and settings.domain_rate_limit is None:
        return NO_LIMIT
    url = settings.broker_url or ""
    if url.startswith(("redis://", "rediss://")):
        # Only a Redis broker needs the client: RabbitMQ and embedded workers never load it.
        import redis

        return RedisLimiter(
            redis.Redis.from_url(url),
            prefix=settings.queue_prefix,
            per_second=settings.rate_limit,
            domain_per_second=settings.domain_rate_limit,
        )
    share = 1 if settings.embedded_queue else settings.worker_processes
    return LocalLimiter(
        per_second=settings.rate_limit / share if settings.rate_limit else None,
        domain_per_second=(
            settings.domain_rate_limit / share if settings.domain_rate_limit else None
        ),
    )
