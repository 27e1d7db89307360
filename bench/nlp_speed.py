"""Speed of segmentation options, classifier prediction (one core) and training (2 cores) on ../shared/data.

Also runs the path users run: the trained model is saved and ``python -m nlp.cli evaluate --json`` scores the
raw messages in a fresh process pinned to one core; its ``msgs_per_s`` is reported as printed.

.venv/bin/python bench/nlp_speed.py
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.classifier import Model, load_records  # noqa: E402
from nlp.segment import Segmenter, join_segmented  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "complaints_labelled.jsonl"

# Where a whole-file evaluate lost its speed: the same evaluation with the batch in one piece or in chunks,
# with glibc's default allocator or with the CLI's keep_freed_memory(). argv: chunk, keep (0/1), model, data.
EVALUATE_VARIANT = """
import sys
import time
import nlp.classifier as c
from nlp.cli import keep_freed_memory
if sys.argv[2] == "1":
    keep_freed_memory()
c.PREDICT_CHUNK = int(sys.argv[1])
model = c.Model.load(sys.argv[3])
records, _ = c.load_records([sys.argv[4]])
cpu = time.process_time()
result = model.evaluate(records)
print(result["msgs_per_s"], round(len(records) / (time.process_time() - cpu)))
"""
VARIANTS = (
    ("whole file as one batch, default allocator (the path before)", 10**9, "0"),
    ("chunks of 256 messages, default allocator", 256, "0"),
    ("chunks of 256 + keep_freed_memory() (what `nlp evaluate` runs now)", 256, "1"),
)


def _rate(fn: Callable[[str], object], texts: list[str]) -> float:
    t0 = time.perf_counter()
    for text in texts:
        fn(text)
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    records, info = load_records([DATA])
    raw = [r for r in records if r.form == "raw"]
    texts = [join_segmented(f"{r.title} {r.text}") for r in raw]
    print(f"## Speed ({len(raw)} raw messages, mean {np.mean([len(t) for t in texts]):.0f} chars)\n")

    # Training uses both cores (calibration folds run in parallel).
    t0 = time.perf_counter()
    model = Model.train(records, data_info=info, n_jobs=2)
    train_s = time.perf_counter() - t0
    chosen = model.metadata["selection"]["chosen"]
    per_fit = ", ".join(
        f"{c['name']} {c['seconds']} s" for c in model.metadata["selection"]["candidates"] if c["seconds"]
    )

    # The evaluate command in a fresh process on one core, as a user runs it.
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model")
        raw_file = Path(tmp) / "raw.jsonl"
        raw_file.write_text(
            "".join(
                json.dumps({"title": r.title, "text": r.text, "label": r.label}, ensure_ascii=False) + "\n" for r in raw
            ),
            encoding="utf-8",
        )
        cpu = sorted(os.sched_getaffinity(0))[0] if hasattr(os, "sched_getaffinity") else None
        command = [sys.executable, "-m", "nlp.cli", "evaluate", "--model", str(Path(tmp) / "model")]
        command += ["--data", str(raw_file), "--json"]
        evaluate_rates = []
        for _ in range(3):
            done = subprocess.run(
                ["taskset", "-c", str(cpu), *command] if cpu is not None else command,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            evaluate_rates.append(float(json.loads(done.stdout)["msgs_per_s"]))
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        model_dir = str(Path(tmp) / "model")
        variant_rates: dict[str, list[tuple[float, ...]]] = {name: [] for name, _, _ in VARIANTS}
        for _ in range(3):  # round robin, so a change in the machine's load hits every variant alike
            for name, chunk, keep in VARIANTS:
                out = subprocess.run(
                    [*pin, sys.executable, "-c", EVALUATE_VARIANT, str(chunk), keep, model_dir, str(raw_file)],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                variant_rates[name].append(tuple(float(x) for x in out.split()))

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    tok = jieba.Tokenizer()
    tok.initialize()
    rj = Segmenter()
    rj_nohmm = Segmenter(hmm=False)
    cached = functools.lru_cache(maxsize=100_000)(rj.cut)
    for t in texts:
        cached(t)
    rows = [
        ("jieba 0.42 (pure Python), HMM on (default)", _rate(lambda t: tok.lcut(t), texts)),
        ("jieba, HMM off", _rate(lambda t: tok.lcut(t, HMM=False), texts)),
        ("rjieba (jieba-rs), HMM on  <- chosen", _rate(rj.cut, texts)),
        ("rjieba, HMM off", _rate(rj_nohmm.cut, texts)),
        ("rjieba + LRU cache, every message seen before (best case)", _rate(cached, texts)),
    ]
    print("| segmenter (same jieba dictionary) | msgs/s, one core |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")

    items = [(r.title, r.text) for r in raw]
    model.predict_many(items[:50])
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict_many(items)
        best = max(best, len(items) / (time.perf_counter() - t0))
    single, single_cpu = [], []
    for title, text in items[:1000]:
        c0, t0 = time.process_time(), time.perf_counter()
        model.predict(title, text)
        single.append((time.perf_counter() - t0) * 1000)
        single_cpu.append((time.process_time() - c0) * 1000)
    print("\n| classifier | figure |\n|---|---|")
    print(
        f"| training on {len(records)} records (2 cores), every candidate with out-of-fold validation "
        f"(chosen: {chosen}; fits: {per_fit}) | {train_s:.1f} s |"
    )
    print(
        "| `nlp evaluate --json` msgs_per_s, fresh process on one core, 3 runs | "
        + " / ".join(f"{r:,.0f}" for r in evaluate_rates)
        + " |"
    )
    print(f"| predict_many, one core, batch of {len(items)} | {best:,.0f} msgs/s |")
    print(
        f"| predict, single message, p50 / p99 (1,000 calls) | {np.percentile(single, 50):.2f} / "
        f"{np.percentile(single, 99):.2f} ms |"
    )
    # CPU time per call: on a shared machine the wall-clock tail is mostly waiting for the core.
    print(
        f"| predict, single message, CPU time p50 / p99 | {np.percentile(single_cpu, 50):.2f} / "
        f"{np.percentile(single_cpu, 99):.2f} ms |"
    )
    print(
        "\n| `Model.evaluate` on the raw messages, fresh process on one core, 3 runs | msgs_per_s (wall clock) "
        "| msgs per CPU second |\n|---|---|---|"
    )
    for name, rates in variant_rates.items():
        wall = " / ".join(f"{w:,.0f}" for w, _ in rates)
        cpu_rates = " / ".join(f"{c:,.0f}" for _, c in rates)
        print(f"| {name} | {wall} | {cpu_rates} |")


if __name__ == "__main__":
    main()
