"""Bench-only hook: ``bench/soak.py --tracemalloc DIR`` puts this directory on PYTHONPATH so every server process
traces its allocations (from 150 s after it started) and dumps a snapshot every ``HOTLINE_BENCH_TRACEMALLOC_SECONDS``
(default 60) as ``DIR/<pid>-<n>.snap``. Never on PYTHONPATH otherwise: nothing of the product imports it."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

_DIR = os.environ.get("HOTLINE_BENCH_TRACEMALLOC_DIR")


def _dump_every(directory: Path, seconds: float) -> None:
    # Tracing starts once the process has loaded (the model, the directory): start-up under tracemalloc is many times
    # slower, and growth is what the snapshots are compared for.
    time.sleep(float(os.environ.get("HOTLINE_BENCH_TRACEMALLOC_AFTER", "150")))
    tracemalloc.start(int(os.environ.get("HOTLINE_BENCH_TRACEMALLOC_FRAMES", "8")))
    n = 0
    while True:
        time.sleep(seconds)
        n += 1
        tracemalloc.take_snapshot().dump(str(directory / f"{os.getpid()}-{n:03d}.snap"))


if _DIR:
    threading.Thread(target=_dump_every, args=(Path(_DIR), float(os.environ.get(
        "HOTLINE_BENCH_TRACEMALLOC_SECONDS", "60"))), name="tracemalloc-dump", daemon=True).start()
