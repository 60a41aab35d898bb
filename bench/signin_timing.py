"""Time POST /p for a known and an unknown address: the answers should not tell them apart.

    .venv/bin/python bench/signin_timing.py [requests] [--no-worker]

Prints the median and 90th percentile per kind, interleaved so that drift hits both alike.
With ``--no-worker`` the in-process worker does not run during the requests (as with a
separate ``prefsvc worker``), so only the request's own work is timed; mails are sent after.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from prefsvc import create_app
from prefsvc.extensions import db
from prefsvc.models import Contact
from prefsvc.queue import broker
from prefsvc.settings import Settings


def main(count: int, *, worker: bool = True) -> None:
    instance = Path(tempfile.mkdtemp(prefix="prefsvc-bench-"))
    settings = Settings(
        instance_path=instance,
        database_url=f"sqlite:///{instance / 'bench.db'}",
        broker_url=None,
        mail_url=f"maildir:{instance / 'outbox'}",
        base_url="http://127.0.0.1:5004",
        secret_keys=("bench-key-0123456789",),
        suppression_key="bench-suppression-0123",
        mail_from="Bench <bench@example.org>",
        rate_limit_signin_client="1000000 per minute",
        rate_limit_signin_address="1000000 per minute",
        rate_limit_token_client="1000000 per minute",
    )
    app = create_app(settings)
    app.config["WTF_CSRF_ENABLED"] = False
    queue = app.extensions[broker.EXTENSION_KEY]
    start_worker = queue._ensure_inprocess_worker
    if not worker:
        queue._ensure_inprocess_worker = lambda: None
    with app.app_context():
        db.create_all()
        db.session.add(Contact(email="known@example.org", window_anchor=date(2026, 1, 1)))
        db.session.commit()
        client = app.test_client()
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for n in range(count):
            pair = [("known", "known@example.org"), ("unknown", f"x{n}@example.org")]
            for kind, address in pair if n % 2 else reversed(pair):  # neither always goes first
                start = time.perf_counter()
                response = client.post("/p", data={"email": address})
                times[kind].append(time.perf_counter() - start)
                assert response.status_code == 200
        queue._ensure_inprocess_worker = start_worker
        start_worker()
        broker.queue().join(timeout_ms=60_000)
        sent = len(list((instance / "outbox" / "new").iterdir()))
        broker.queue().stop()
    for kind, values in times.items():
        values.sort()
        print(
            f"{kind:8} median {statistics.median(values) * 1000:.2f} ms"
            f"  p90 {values[int(len(values) * 0.9)] * 1000:.2f} ms  (n={len(values)})"
        )
    print(f"mails sent: {sent} (one per known request, none for unknown)")


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    main(int(numbers[0]) if numbers else 200, worker="--no-worker" not in sys.argv)
