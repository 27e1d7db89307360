"""CPU per processed ticket: what the worker spends to turn one accepted channel message into a ticket.

Run (one command; needs PostgreSQL on 127.0.0.1:5432 with trust auth and Redis on 127.0.0.1:6379):

    .venv/bin/python bench/intake_cpu.py                    # 2,000 real messages, batches of 50
    .venv/bin/python bench/intake_cpu.py --messages 500 --profile 25   # and the 25 costliest functions

What it does: creates a fresh PostgreSQL database, migrates it, trains the starter model and seeds the demo city
(the same steps as bench/intake_load.py), then in this one process: accepts N real citizen messages of
../shared/data on the web channel (``hotline.inbound.accept``, like POST /api/inbound), and runs
``inbound.process_pending`` until the backlog is empty, with the desk events published to Redis. It measures the
process's CPU time (``time.process_time``: this process only, so other load on the shared machine counts less than in
wall-clock figures), the wall time and the SQL statements, and prints them per ticket. The database server's own CPU
is not included (it is the same for every run of one schema; the statement count stands for it).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from demo_city import REDIS, demo_city
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "complaints_labelled.jsonl"


def real_messages(n: int) -> list[str]:
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing (the benchmark processes real citizen messages)")
    texts = [json.loads(line)["text"] for line in DATA.open(encoding="utf-8")]
    chosen = [t for t in texts if 200 <= len(t) <= 2000]  # about 420 characters on average, like the load bench
    return [chosen[i % len(chosen)] for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50, help="messages per claimed batch (the worker's default)")
    parser.add_argument("--profile", type=int, default=0, help="print the N functions with the most cumulative time")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="intake-cpu-"))
    url, env = demo_city(tmp / "model")
    try:
        os.environ.update(env)
        from hotline import inbound
        from hotline.db import transaction
        from hotline.services import build_services
        from hotline.settings import Settings

        services = build_services(Settings(demo=True, database_url=url, redis_url=REDIS, model_dir=tmp / "model"))
        run = uuid.uuid4().hex[:8]
        started_accept = time.perf_counter()
        texts = real_messages(args.messages)
        for start in range(0, len(texts), 100):
            with transaction(services.sessions) as session:
                for n, text in enumerate(texts[start:start + 100], start):
                    inbound.accept(session, inbound.Inbound(channel="web", external_id=f"{run}-{n}", text=text))
        accept_s = time.perf_counter() - started_accept

        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        event.listen(services.engine, "before_cursor_execute", count)
        settings = services.settings
        profiler = cProfile.Profile() if args.profile else None
        created = failed = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        while True:
            report = inbound.process_pending(services.sessions, services.suggester, services.timing, limit=args.batch,
                                             auto_dispatch=settings.auto_dispatch,
                                             max_text_chars=settings.max_text_chars)
            created, failed = created + report.created, failed + report.failed + report.retried
            if not report:
                break
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        event.remove(services.engine, "before_cursor_execute", count)
        load = os.getloadavg()
        print(f"## CPU per processed ticket ({platform.node()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')})\n")
        print(f"`bench/intake_cpu.py {' '.join(sys.argv[1:])}`: {args.messages} real messages accepted in "
              f"{accept_s:.1f} s, processed in batches of {args.batch}; load average {load[0]:.2f} {load[1]:.2f}\n")
        print("| tickets | failed | CPU ms / ticket | wall ms / ticket | tickets/s (one process) | SQL / ticket |")
        print("|---|---|---|---|---|---|")
        per = max(created, 1)
        print(f"| {created} | {failed} | {cpu * 1000 / per:.2f} | {wall * 1000 / per:.2f} | {created / wall:.0f} | "
              f"{len(statements) / per:.1f} |")
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile)
            print("\n```\n" + out.getvalue().strip() + "\n```")
        services.engine.dispose()
        return 0 if created == args.messages and not failed else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
