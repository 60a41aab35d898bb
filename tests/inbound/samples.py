"""The corpus of returned mail, and a way to make its ids name this test's real deliveries.

The corpus files carry tokens made with the corpus keys for made-up delivery ids; ``retoken``
swaps them for this app's tokens of real deliveries, so every id in a report is one of ours.
"""

from __future__ import annotations

from pathlib import Path

from prefsvc.inbound import verp
from prefsvc.inbound.verp import BOUNCES, DELIVERY, UNSUBSCRIBE

CORPUS = Path(__file__).parent / "corpus"
CORPUS_CODEC = verp.codec(("corpus-secret-key-0123456789",))
BOUNCE_DOMAIN = "bounces.example.org"  # the bounce domain the corpus was written for


def retoken(name: str, codec: verp.VerpCodec, deliveries: dict[int, int]) -> bytes:
    """Return a corpus file with its corpus tokens for ``deliveries`` keys made ours."""
    raw = (CORPUS / name).read_bytes()
    for corpus_id, delivery_id in deliveries.items():
        for purpose in (BOUNCES, UNSUBSCRIBE):
            old = CORPUS_CODEC.token(purpose, DELIVERY, corpus_id)
            new = codec.token(purpose, DELIVERY, delivery_id)
            raw = raw.replace(old.encode(), new.encode())
            raw = raw.replace(old.upper().encode(), new.upper().encode())
    return raw
