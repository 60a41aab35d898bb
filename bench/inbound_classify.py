"""Benchmark: reports classified per second over the inbound fixture corpus.

Classifies every ``tests/inbound/corpus/*.eml`` (DSNs, ARF complaints, non-standard bounces,
auto-replies) in turn, with envelope tokens verified as the intake would, and prints the rate
overall and per file, so a slow path (flufl.bounce's heuristics, say) shows by name.

    .venv/bin/python bench/inbound_classify.py [--rounds 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prefsvc.inbound import reports, verp  # noqa: E402
from prefsvc.inbound.classify import classify  # noqa: E402

CORPUS = ROOT / "tests" / "inbound" / "corpus"
KEYS = ("corpus-secret-key-0123456789",)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    rounds = parser.parse_args().rounds
    codec = verp.codec(KEYS)
    corpus = [(path.name, path.read_bytes()) for path in sorted(CORPUS.glob("*.eml"))]
    recipient = "bounces+5ywx3cu434fx73fsiy3z5mvru3vru6t55vsyz4fh@bounces.example.org"

    def one(raw: bytes) -> None:
        classify(raw, envelope=codec.parse(recipient), codec=codec, message_id_domain=None)

    for _, raw in corpus:
        one(raw)  # warm-up: imports, regex caches

    def cpu_seconds(function, raws: list[bytes], repeat: int) -> float:
        """Best of three, in CPU time: the figure of this process, not of a busy machine."""
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for _ in range(repeat):
                for raw in raws:
                    function(raw)
            best = min(best, time.process_time() - started)
        return best

    raws = [raw for _, raw in corpus]
    elapsed = cpu_seconds(one, raws, rounds)
    count = rounds * len(corpus)
    print(f"{count} reports in {elapsed:.2f} s CPU: {count / elapsed:,.0f} reports/s (one core)")
    parsing = cpu_seconds(reports.parse, raws, rounds)
    print(f"  of which the stdlib email parser alone: {parsing / elapsed:.0%}")
    for name, raw in corpus:
        repeat = max(rounds // 5, 1)
        per_call = cpu_seconds(one, [raw], repeat) / repeat
        print(f"  {name:32} {per_call * 1e6:8.0f} µs  {len(raw):6} bytes")


if __name__ == "__main__":
    main()
