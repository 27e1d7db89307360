"""Compare two tracemalloc snapshots of one process (``bench/soak.py --tracemalloc DIR``) by traceback.

    .venv/bin/python bench/tracemalloc_compare.py DIR/<pid>-002.snap DIR/<pid>-010.snap [--top 25] [--frames 6]

Prints the total traced memory of each snapshot and the allocation sites that grew most between them, each with
its traceback (innermost last), so a cache that fills with the data shows where it is kept.
"""

from __future__ import annotations

import argparse
import tracemalloc
from pathlib import Path

IGNORED = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
           tracemalloc.Filter(False, "<unknown>"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=6, help="frames of each traceback shown")
    parser.add_argument("--key", choices=("traceback", "lineno", "filename"), default="traceback")
    args = parser.parse_args()
    before = tracemalloc.Snapshot.load(str(args.before)).filter_traces(IGNORED)
    after = tracemalloc.Snapshot.load(str(args.after)).filter_traces(IGNORED)
    total = [sum(s.size for s in snap.statistics("filename")) / 2**20 for snap in (before, after)]
    print(f"traced: {total[0]:.1f} MiB -> {total[1]:.1f} MiB ({total[1] - total[0]:+.2f} MiB)")
    for stat in after.compare_to(before, args.key)[: args.top]:
        print(f"\n{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks (now {stat.size / 1024:.1f} KiB)")
        for line in stat.traceback.format(limit=args.frames, most_recent_first=False):
            print(f"    {line}")


if __name__ == "__main__":
    main()
