"""Near-duplicate search on ../shared/data/complaints_hotspot.jsonl: precision of the top suggestion on
hand-labelled pairs (bench/data/duplicate_labels.jsonl: ids and verdicts only) and lookup time at 100,000 tickets.

Replay: messages are added in time order; before adding each one we query the index (window 30 days, place =
first anonymised district/county named in the message, e.g. "A3区", unknown if none). The labelled sample is
drawn from queries whose top suggestion scores >= MIN_SCORE.

    .venv/bin/python bench/nlp_duplicates.py            # figures
    .venv/bin/python bench/nlp_duplicates.py --show 60  # print a sample of pairs to label by hand
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.duplicates import DuplicateIndex  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "complaints_hotspot.jsonl"
LABELS = ROOT / "bench" / "data" / "duplicate_labels.jsonl"
MIN_SCORE = 0.3
WINDOW = timedelta(days=30)
_DISTRICT = re.compile(r"[A-Z]\d{1,2}[区县]")


def _time(value: str) -> datetime:
    for fmt in ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"):
        try:
            return datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    raise ValueError(value)


def _load() -> list[dict]:
    rows = [json.loads(line) for line in DATA.open(encoding="utf-8")]
    for r in rows:
        r["at"] = _time(r["time"])
        r["full"] = f"{r['title']}。{r['text']}"
        m = _DISTRICT.search(r["full"])
        r["place"] = m.group(0) if m else None
    rows.sort(key=lambda r: (r["at"], r["id"]))
    return rows


def replay(rows: list[dict]) -> list[tuple[str, str, float]]:
    index = DuplicateIndex(window=WINDOW)
    pairs = []
    for r in rows:
        hits = index.query(r["full"], r["place"], r["at"], k=1, min_score=MIN_SCORE)
        if hits:
            pairs.append((r["id"], str(hits[0].ticket_id), hits[0].score))
        index.add(r["id"], r["full"], r["place"], r["at"])
    return pairs


def timing(rows: list[dict], n: int = 100_000, queries: int = 500) -> dict[str, float]:
    """Index n tickets (the real messages repeated with small edits, random places/times in the window)."""
    rng = random.Random(0)
    index = DuplicateIndex(window=timedelta(days=7))
    base = datetime(2024, 1, 1)
    t0 = time.perf_counter()
    for i in range(n):
        r = rows[i % len(rows)]
        text = r["full"] if i < len(rows) else f"{r['full'][: rng.randint(40, 200)]}{i}号{rng.choice('东西南北')}门"
        index.add(i, text, f"D{rng.randint(1, 40)}", base + timedelta(minutes=rng.randint(0, 7 * 24 * 60)))
    build = time.perf_counter() - t0
    times = []
    for _ in range(queries):
        r = rng.choice(rows)
        t0 = time.perf_counter()
        index.query(r["full"], f"D{rng.randint(1, 40)}", base + timedelta(days=3), k=5, min_score=MIN_SCORE)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "n": n,
        "build_s": build,
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "mean_ms": float(np.mean(times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--show", type=int, default=0, help="print N sampled pairs for hand labelling")
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    rows = _load()
    by_id = {r["id"]: r for r in rows}
    pairs = replay(rows)
    if args.show:
        for q, d, s in random.Random(1).sample(pairs, min(args.show, len(pairs))):
            print(f"=== {q} -> {d} score {s}\nQ: {by_id[q]['full'][:160]}\nD: {by_id[d]['full'][:160]}\n")
        return
    print(f"## Duplicate search on {len(rows)} hot-spot messages (window {WINDOW.days} days, min score {MIN_SCORE})\n")
    print(f"queries with a suggestion: {len(pairs)} of {len(rows)}\n")
    if LABELS.exists():
        # The verdicts are looked up for the pairs *this* replay suggests: a change to the index that suggests
        # other duplicates shows up as unlabelled pairs (label them with --show) instead of keeping old figures.
        verdicts = {
            (lab["query_id"], lab["suggested_id"]): lab["verdict"]
            for lab in (json.loads(line) for line in LABELS.open(encoding="utf-8") if line.strip())
        }
        labelled_queries = {q for q, _ in verdicts}
        current = [(q, d, s) for q, d, s in pairs if q in labelled_queries]
        print("| top suggestion of a hand-labelled query | suggested now | same pair as labelled | same incident "
              "| precision |\n|---|---|---|---|---|")
        for floor in (MIN_SCORE, 0.4, 0.5):
            subset = [(q, d) for q, d, s in current if s >= floor]
            judged = [verdicts[(q, d)] for q, d in subset if (q, d) in verdicts]
            right = sum(1 for v in judged if v == "same")
            print(f"| score >= {floor} | {len(subset)} | {len(judged)} | {right} | {right / max(len(judged), 1):.1%} |")
        print(f"\n{len(labelled_queries)} queries labelled by hand (bench/data/duplicate_labels.jsonl); a pair "
              "suggested now but not labelled needs a verdict before the precision can be trusted.\n")
    t = timing(rows, args.n)
    print("| open tickets | build | query p50 | query p99 | query mean |\n|---|---|---|---|---|")
    print(
        f"| {t['n']:,} | {t['build_s']:.1f} s | {t['p50_ms']:.2f} ms | {t['p99_ms']:.2f} ms | {t['mean_ms']:.2f} ms |"
    )


if __name__ == "__main__":
    main()
