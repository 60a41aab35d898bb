"""Rate limits of the recipient pages: per client and per link (or address), from the settings.

Keys are digests or ids, never a link or an address: the counts may live in Redis.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import request
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many

from prefsvc.extensions import limiter
from prefsvc.recipient import signin
from prefsvc.settings import current_settings


def _client_key() -> str:
    return f"{current_settings().queue_prefix}client:{get_remote_address()}"


def _token_key() -> str:
    """Key on a digest of the link, never on the link itself (storage may be Redis)."""
    token = (request.view_args or {}).get("token", "")
    digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"{current_settings().queue_prefix}token:{digest}"


def _address_key() -> str:
    settings = current_settings()
    address = signin.address_key(request.form.get("email", ""), settings.suppression_key)
    return f"{settings.queue_prefix}address:{address}"


def _signup_address_key() -> str:
    """Key a sign-up on its address, form-encoded or JSON (a keyed hash, as above)."""
    settings = current_settings()
    email = request.form.get("email", "")
    if request.is_json:
        body = request.get_json(silent=True)
        email = body.get("email") if isinstance(body, dict) else ""
    text = email if isinstance(email, str) else ""
    address = signin.address_key(text, settings.suppression_key)
    return f"{settings.queue_prefix}signup-address:{address}"


per_client_on_links = limiter.shared_limit(
    lambda: current_settings().rate_limit_token_client, scope="links", key_func=_client_key
)
per_link = limiter.limit(lambda: current_settings().rate_limit_token, key_func=_token_key)
per_client_on_signin = limiter.limit(
    lambda: current_settings().rate_limit_signin_client,
    key_func=_client_key,
    methods=["POST"],
)
per_address_on_signin = limiter.limit(
    lambda: current_settings().rate_limit_signin_address,
    key_func=_address_key,
    methods=["POST"],
)


per_client_on_signup = limiter.limit(
    lambda: current_settings().rate_limit_signup_client,
    key_func=_client_key,
    methods=["POST"],
)
per_address_on_signup = limiter.limit(
    lambda: current_settings().rate_limit_signup_address,
    key_func=_signup_address_key,
    methods=["POST"],
)


class OneClickFloodGuard:
    """The per-client limit of one-click POSTs, counted in fixed windows in this process.

    Mailbox providers POST one-click unsubscribes for all their users from a few addresses,
    by the hundred a second while a campaign goes out, so a provider has a limit of its own
    and is never turned away after a large campaign. The limit only guards against floods
    (a repeated one-click changes and mails nothing), so it is counted in memory: a round
    trip to Redis through Flask-Limiter cost more than the unsubscribe itself, and ``limits``'
    own memory storage starts a timer thread every 10 ms under load. Each web process counts
    apart: N processes let a client through N times the limit.
    """

    KEY = "prefsvc.one_click_flood_guard"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._text = ""
        self._windows: list[tuple[RateLimitItem, int, Counter[str]]] = []

    @classmethod
    def of(cls, app: Any) -> OneClickFloodGuard:
        guard = app.extensions.get(cls.KEY)
        if guard is None:
            guard = app.extensions.setdefault(cls.KEY, cls())
        return guard

    def admit(self, text: str, client: str) -> bool:
        """Count one POST from ``client``; False once any of the limits in ``text`` is spent."""
        now = self._clock()
        admitted = True
        with self._lock:
            if text != self._text:
                self._text, self._windows = text, [(lim, -1, Counter()) for lim in parse_many(text)]
            for i, (limit, index, counts) in enumerate(self._windows):
                if index != (current := int(now // limit.get_expiry())):
                    counts = Counter()
                    self._windows[i] = (limit, current, counts)
                counts[client] += 1
                admitted = admitted and counts[client] <= limit.amount
        return admitted
