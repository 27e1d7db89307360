"""Throughput of the working calendar, deadline computation and catalogue routing.

Usage: ``.venv/bin/python bench/routing_calendar.py [--n 200000] [--sweep 1000000] [--seed 1]``

Prints ops/s per operation (single thread, best of 3 runs) and the wall time of a deadline sweep over
``--sweep`` tickets (sign + reply due per ticket, as a nightly recomputation after a holiday change would).
Starts are random minutes in 2025–2026 (both known to the package) in Asia/Shanghai; durations are drawn
from the default policies. No database, no network.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.calendar import WorkCalendar
from routing.catalogue import Catalogue, Rule, category_path
from routing.deadlines import DEFAULT_POLICIES, PolicyTable, compute_deadlines


def _best_of(runs: int, fn: Callable[[], int]) -> float:
    """Best ops/s of ``runs`` runs; ``fn`` returns the number of operations it did."""
    best = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        ops = fn()
        best = max(best, ops / (time.perf_counter() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000, help="operations per micro-benchmark run")
    parser.add_argument("--sweep", type=int, default=1_000_000, help="tickets in the deadline sweep")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    tz = ZoneInfo("Asia/Shanghai")
    rng = random.Random(args.seed)
    base = datetime(2025, 1, 1, tzinfo=tz)
    minutes = 2 * 365 * 24 * 60
    starts = [base + timedelta(minutes=rng.randrange(minutes)) for _ in range(args.n)]
    ends = [base + timedelta(minutes=rng.randrange(minutes)) for _ in range(args.n)]
    amounts = [timedelta(minutes=rng.randrange(1, 10 * 450)) for _ in range(args.n)]  # up to 10 working days

    t0 = time.perf_counter()
    cal = WorkCalendar()
    cal.working_time_between(base, base + timedelta(days=800))  # builds 2025–2027 indexes
    cold_ms = (time.perf_counter() - t0) * 1000

    def bench_add() -> int:
        add = cal.add_working_time
        for s, d in zip(starts, amounts, strict=True):
            add(s, d)
        return len(starts)

    utc_starts = [s.astimezone(ZoneInfo("UTC")) for s in starts]

    def bench_add_utc() -> int:
        add = cal.add_working_time
        for s, d in zip(utc_starts, amounts, strict=True):
            add(s, d)
        return len(starts)

    def bench_between() -> int:
        between = cal.working_time_between
        for a, b in zip(starts, ends, strict=True):
            between(a, b)
        return len(starts)

    def bench_days() -> int:
        add_days = cal.add_working_days
        for i, s in enumerate(starts):
            add_days(s, 1 + i % 10)
        return len(starts)

    def bench_next() -> int:
        nxt = cal.next_working_moment
        for s in starts:
            nxt(s)
        return len(starts)

    kinds = list(DEFAULT_POLICIES)
    table = PolicyTable()

    def bench_deadlines() -> int:
        for i, s in enumerate(starts):
            compute_deadlines(cal, table.policy_for(kinds[i % len(kinds)], "1502", urgent=i % 50 == 0), s)
        return len(starts)

    rules = [
        Rule(i, f"{1 + i % 16:02d}{1 + i % 9:02d}", f"street-{i % 400}", f"unit-{i % 700}")
        for i in range(1, 5001)
    ]
    catalogue = Catalogue(rules)
    queries = [
        (
            category_path(f"{1 + rng.randrange(16):02d}{1 + rng.randrange(9):02d}{1 + rng.randrange(5):02d}"),
            ("city", f"district-{rng.randrange(12)}", f"street-{rng.randrange(500)}", f"community-{i}"),
        )
        for i in range(args.n)
    ]

    def bench_route() -> int:
        r = catalogue.route
        for cats, area in queries:
            r(cats, area)
        return len(queries)

    results = {
        "add_working_time": _best_of(3, bench_add),
        "add_working_time (UTC input, converted)": _best_of(3, bench_add_utc),
        "working_time_between": _best_of(3, bench_between),
        "add_working_days": _best_of(3, bench_days),
        "next_working_moment": _best_of(3, bench_next),
        "compute_deadlines (policy lookup + sign + reply)": _best_of(3, bench_deadlines),
        "catalogue route (5,000 rules)": _best_of(3, bench_route),
    }

    # Sweep: sign + reply deadlines for --sweep tickets, cycling through the generated starts.
    t0 = time.perf_counter()
    n = 0
    while n < args.sweep:
        for i, s in enumerate(starts[: args.sweep - n]):
            compute_deadlines(cal, DEFAULT_POLICIES[kinds[i % len(kinds)]], s)
        n += min(len(starts), args.sweep - n)
    sweep_s = time.perf_counter() - t0

    print(f"# routing calendar bench, {date.today().isoformat()}")
    cpu = platform.processor() or platform.machine()
    print(f"python {platform.python_version()}, nproc {os.cpu_count()}, {cpu}")
    print(f"cold index build (3 years): {cold_ms:.1f} ms")
    for name, ops in results.items():
        print(f"{name:50s} {ops:12,.0f} ops/s")
    print(
        f"deadline sweep: {args.sweep:,} tickets in {sweep_s:.2f} s ({args.sweep / sweep_s:,.0f} tickets/s)"
    )


if __name__ == "__main__":
    main()
