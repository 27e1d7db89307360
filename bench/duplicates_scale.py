"""What the duplicate index costs as it grows: add and query times with 20k to 200k tickets indexed.

The tickets are the shared data's messages, cycled (so a text recurs every ~8,000 tickets, as many a real
complaint does); one process, one thread, wall clock.

.venv/bin/python bench/duplicates_scale.py
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.duplicates import DuplicateIndex  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "complaints_labelled.jsonl"
SIZES = (20_000, 50_000, 100_000, 200_000)
PROBES = 200


def main() -> int:
    if not DATA.exists():
        raise SystemExit(f"shared data not found at {DATA}")
    texts = [t for t in (json.loads(line).get("text") or "" for line in DATA.open(encoding="utf-8")) if t]
    now = datetime.now(UTC)
    print("| tickets indexed | add µs / ticket | query ms |")
    print("|---|---|---|")
    for n in SIZES:
        index = DuplicateIndex()
        terms = [index.terms(t) for t in texts]
        started = time.perf_counter()
        for i in range(n):
            index.add(i, texts[i % len(texts)], None, now - timedelta(seconds=n - i), terms=terms[i % len(terms)])
        add_us = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        for text in texts[:PROBES]:
            index.query(text, None, now)
        query_ms = (time.perf_counter() - started) / PROBES * 1000
        print(f"| {n:,} | {add_us:.0f} | {query_ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
