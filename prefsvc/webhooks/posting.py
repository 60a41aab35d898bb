"""Post one signed event: ``requests`` with a kept-alive session per thread and short timeouts.

A receiver gets ``TIMEOUT`` to connect and to answer; a redirect is an answer like any non-2xx
(the registered URL is the one signed for). Only the first ``EXCERPT_BYTES`` of the answer
are read, for the delivery log. Nothing here logs: the URL may hold a token and the body an
address.
"""

from __future__ import annotations

import threading

import requests

from prefsvc.webhooks.delivery import EXCERPT, Answer

CONNECT_TIMEOUT = 3.05
EXCERPT_BYTES = 4096
_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["user-agent"] = "prefsvc-webhooks/1"
        _local.session = session
    return session


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = 5.0) -> Answer:
    """Post the body; return the status and an excerpt, or no status and the error's name."""
    try:
        response = _session().post(
            url,
            data=body,
            headers=headers,
            timeout=(CONNECT_TIMEOUT, timeout),
            allow_redirects=False,
            stream=True,
        )
    except requests.RequestException as exc:
        return Answer(None, type(exc).__name__)
    try:
        raw = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
        if response.raw.read(1):
            response.close()  # more than we read: drop the connection rather than drain it
    except (requests.RequestException, OSError, ValueError) as exc:
        response.close()
        return Answer(response.status_code, type(exc).__name__)
    text = raw.decode("utf-8", "replace")
    excerpt = " ".join(text.split())[:EXCERPT]
    return Answer(response.status_code, excerpt)


def close() -> None:
    """Close this thread's session (worker threads shutting down)."""
    session = getattr(_local, "session", None)
    if session is not None:
        session.close()
        _local.session = None
