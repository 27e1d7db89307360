"""Fan-out benchmark of the desk's live channel: N concurrent WebSocket clients, 2 uvicorn workers, Redis.

Run (one command, loopback only, bounded by --timeout):

    .venv/bin/python bench/ws_fanout.py                # 1,000 clients, 2 workers, results on stdout
    .venv/bin/python bench/ws_fanout.py --write        # ... and var/ui_results.md

What it does: starts a throwaway redis-server (or uses HOTLINE_BENCH_REDIS_URL), a fresh SQLite database with ten
units, and ``uvicorn --workers 2`` on a free port (text analysis off: this measures the desk, not the NLP). It
opens the clients (80 % unit handlers spread over the ten units, 15 % agents, 5 % supervisors), lets them idle,
reads the workers' RSS, then drives tickets through intake and dispatch over the REST API and records, for every
event, when each client received it.

Figures:
- latency of one delivery = client receive time − the event's ``created_at`` (stamped inside the transaction just
  before the commit, so this slightly over-states commit-to-client); p50/p99 over all deliveries, and per event
  the time until the *last* eligible client had it ("every eligible client");
- memory per idle connection = (RSS of both workers with N idle clients − RSS before any client) / N;
- correctness: every eligible client got every event, and no unit client got another unit's event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
UNITS = 10


def make_app() -> Any:
    """The uvicorn factory of the benchmark's workers: the real app, without loading a text model."""
    from hotline.app import create_app
    from hotline.services import build_services
    from hotline.settings import Settings

    settings = Settings()
    return create_app(settings, build_services(settings, load_model=False))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(database_url: str) -> dict[str, Any]:
    """Ten units, one handler per unit, one agent, one supervisor; returns their tokens."""
    from hotline import auth
    from hotline.db import make_engine, make_sessionmaker
    from hotline.migrate import upgrade
    from hotline.models import Area, Role, Unit, User
    from hotline.settings import Settings

    upgrade(database_url)
    settings = Settings(demo=True, database_url=database_url)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    password = auth.hash_password("bench-password")
    with sessions() as s:
        city = Area(code="mh", name="明湖市", level="city", aliases=[])
        s.add(city)
        s.flush()
        units = [Unit(code=f"u{i}", name=f"测试单位{i}", kind="bureau", area_id=city.id) for i in range(UNITS)]
        s.add_all(units)
        s.flush()
        users = {f"unit{i}": User(username=f"unit{i}", display_name=f"单位{i}经办人", role=Role.unit_handler,
                                  unit_id=u.id, password_hash=password) for i, u in enumerate(units)}
        users["agent"] = User(username="agent", display_name="话务员", role=Role.agent, password_hash=password)
        users["supervisor"] = User(username="supervisor", display_name="督办员", role=Role.supervisor,
                                   password_hash=password)
        s.add_all(users.values())
        s.commit()
        tokens = {k: auth.issue_token(settings, u)[0] for k, u in users.items()}
        unit_ids = [u.id for u in units]
    engine.dispose()
    return {"tokens": tokens, "unit_ids": unit_ids}


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
    return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Client:
    index: int
    role: str
    unit_id: int | None
    token: str
    worker: int | None = None
    received: dict[int, float] = field(default_factory=dict)  # event_id -> receive time
    foreign: int = 0  # events of another unit's ticket (must stay 0)


@dataclass
class Events:
    meta: dict[int, dict[str, Any]] = field(default_factory=dict)  # event_id -> message


async def run_client(client: Client, url: str, ready: asyncio.Event, events: Events, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, max_queue=None, ping_interval=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"token": client.token}))
        hello = json.loads(await ws.recv())
        client.worker = hello.get("worker")
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong", "t": message.get("t")}))
                continue
            event_id = message.get("event_id")
            if event_id is None:
                continue
            client.received[event_id] = now
            events.meta.setdefault(event_id, message)
            if client.role == "unit" and client.unit_id != message.get("lead_unit_id") \
                    and client.unit_id not in (message.get("co_unit_ids") or []):
                client.foreign += 1


async def bench(args: argparse.Namespace, base: str, seeded: dict[str, Any], worker_pids: list[int]) -> dict[str, Any]:
    import httpx

    tokens, unit_ids = seeded["tokens"], seeded["unit_ids"]
    n = args.clients
    n_sup = max(1, n // 20)
    n_agent = max(1, n * 15 // 100)
    clients: list[Client] = []
    for i in range(n):
        if i < n_sup:
            clients.append(Client(i, "supervisor", None, tokens["supervisor"]))
        elif i < n_sup + n_agent:
            clients.append(Client(i, "agent", None, tokens["agent"]))
        else:
            k = i % UNITS
            clients.append(Client(i, "unit", unit_ids[k], tokens[f"unit{k}"]))
    ws_url = base.replace("http://", "ws://") + "/ws"
    events = Events()
    stop = asyncio.Event()
    rss_before = sum(rss_kb(p) for p in worker_pids)
    started = time.monotonic()
    tasks = []
    readies = []
    sem = asyncio.Semaphore(100)

    async def start(c: Client) -> None:
        async with sem:
            ready = asyncio.Event()
            readies.append(ready)
            tasks.append(asyncio.create_task(run_client(c, ws_url, ready, events, stop)))
            await asyncio.wait_for(ready.wait(), 60)

    # Two steps, so the per-connection figure can also be read as a marginal cost (second half only), free of
    # one-off costs the first connections pay (thread pool, code paths warming up, allocator arenas).
    half = n // 2
    await asyncio.gather(*(start(c) for c in clients[:half]))
    await asyncio.sleep(args.settle)
    rss_half = sum(rss_kb(p) for p in worker_pids)
    await asyncio.gather(*(start(c) for c in clients[half:]))
    connect_seconds = time.monotonic() - started - args.settle
    await asyncio.sleep(args.settle)
    rss_idle = sum(rss_kb(p) for p in worker_pids)
    per_worker = defaultdict(int)
    for c in clients:
        per_worker[c.worker] += 1

    # drive: intake (agent) then dispatch to unit k (agent: first-contact owner may dispatch)
    headers = {"Authorization": f"Bearer {tokens['agent']}"}
    posted = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        for k in range(args.tickets):
            r = await http.post("/api/intake", json={"channel": "phone", "text": f"基准测试工单{k}：道路破损需要修补"})
            r.raise_for_status()
            ticket = r.json()
            r = await http.post(f"/api/tickets/{ticket['id']}/actions/dispatch",
                                json={"unit_id": unit_ids[k % UNITS]})
            r.raise_for_status()
            posted += 2
            await asyncio.sleep(args.interval)
    await asyncio.sleep(3)  # let the last deliveries land
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)

    # evaluate
    deliveries: list[float] = []
    last_per_event: list[float] = []
    missing = 0
    expected_total = 0
    for event_id, message in sorted(events.meta.items()):
        created = datetime.fromisoformat(message["created_at"]).timestamp()
        eligible = [c for c in clients if c.role != "unit" or c.unit_id == message.get("lead_unit_id")
                    or c.unit_id in (message.get("co_unit_ids") or [])]
        expected_total += len(eligible)
        times = []
        for c in eligible:
            t = c.received.get(event_id)
            if t is None:
                missing += 1
            else:
                times.append((t - created) * 1000)
        deliveries.extend(times)
        if times:
            last_per_event.append(max(times))
    return {
        "clients": n,
        "roles": {"supervisor": n_sup, "agent": n_agent, "unit": n - n_sup - n_agent},
        "clients_per_worker": {str(k): v for k, v in sorted(per_worker.items(), key=lambda kv: str(kv[0]))},
        "connect_seconds": round(connect_seconds, 2),
        "events": len(events.meta),
        "events_posted": posted,
        "deliveries": len(deliveries),
        "deliveries_expected": expected_total,
        "missing": missing,
        "foreign_unit_events": sum(c.foreign for c in clients),
        "latency_ms": {
            "p50": round(percentile(deliveries, 50), 1),
            "p99": round(percentile(deliveries, 99), 1),
            "max": round(max(deliveries), 1) if deliveries else None,
            "mean": round(statistics.fmean(deliveries), 1) if deliveries else None,
        },
        "all_eligible_ms": {
            "p50": round(percentile(last_per_event, 50), 1),
            "p99": round(percentile(last_per_event, 99), 1),
        },
        "rss_workers_kb": {"before": rss_before, "half": rss_half, "idle": rss_idle},
        "memory_per_idle_connection_kb": round((rss_idle - rss_before) / n, 1),
        "memory_per_idle_connection_marginal_kb": round((rss_idle - rss_half) / (n - half), 1),
    }


def start_redis(tmp: Path) -> tuple[str, subprocess.Popen[bytes] | None]:
    url = os.environ.get("HOTLINE_BENCH_REDIS_URL")
    if url:
        return url, None
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit("bench: redis-server not found; set HOTLINE_BENCH_REDIS_URL")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        with contextlib.suppress(Exception):
            if redis.Redis.from_url(url).ping():
                return url, proc
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit("bench: redis-server did not start")


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release()}


def write_results(result: dict[str, Any], command: str) -> None:
    m = result["machine"]
    r = result
    lines = [
        "# Desk live channel: WebSocket fan-out benchmark",
        "",
        f"- date: {r['date']}",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, Linux {m['kernel']}; everything on "
        "this one machine over loopback (server workers, Redis and the client process share the CPUs)",
        f"- command: `{command}`",
        f"- setup: {r['workers']} uvicorn workers (`--ws {r['ws']}`), Redis pub/sub, SQLite; "
        f"{r['clients']} WebSocket clients "
        f"({r['roles']['unit']} unit handlers over {UNITS} units, {r['roles']['agent']} agents, "
        f"{r['roles']['supervisor']} supervisors) in one asyncio client process; clients per worker "
        f"{r['clients_per_worker']}",
        f"- load: {r['tickets']} tickets, each intake + dispatch ({r['events']} events), one ticket every "
        f"{r['interval']} s",
        "",
        "| figure | value |",
        "|---|---|",
        f"| commit-to-client latency, per delivery, p50 | {r['latency_ms']['p50']} ms |",
        f"| commit-to-client latency, per delivery, p99 | {r['latency_ms']['p99']} ms |",
        f"| until every eligible client has the event, p50 | {r['all_eligible_ms']['p50']} ms |",
        f"| until every eligible client has the event, p99 | {r['all_eligible_ms']['p99']} ms |",
        f"| deliveries (expected) | {r['deliveries']} ({r['deliveries_expected']}), missing {r['missing']} |",
        f"| events of another unit received by a unit client | {r['foreign_unit_events']} |",
        f"| memory per idle connection (server RSS of both workers, all {r['clients']}) | "
        f"{r['memory_per_idle_connection_kb']} KiB |",
        f"| memory per idle connection, marginal (second half of the clients only) | "
        f"{r['memory_per_idle_connection_marginal_kb']} KiB |",
        f"| worker RSS before / with {r['clients']} idle clients | {r['rss_workers_kb']['before'] // 1024} MiB / "
        f"{r['rss_workers_kb']['idle'] // 1024} MiB |",
        f"| time to open and authenticate all clients | {r['connect_seconds']} s |",
        "",
        "Latency is measured from the event's `created_at` (stamped inside the transaction just before the commit)",
        "to the moment the client process read it, so it includes the commit, the Redis hop, the hub's filtering,",
        "the per-connection queue and the client's own scheduling on the shared CPUs.",
        "",
        "Raw result:",
        "",
        "```json",
        json.dumps(r, ensure_ascii=False, indent=2),
        "```",
        "",
    ]
    out = REPO / "var" / "ui_results.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tickets", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between tickets")
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before measuring memory")
    parser.add_argument("--timeout", type=float, default=300.0, help="hard limit for the whole run")
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation (auto, websockets, "
                        "websockets-sansio, wsproto)")
    parser.add_argument("--write", action="store_true", help="write var/ui_results.md")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.clients * 2 + 256)), hard))
    tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    redis_url, redis_proc = start_redis(tmp)
    database_url = f"sqlite:///{tmp / 'bench.db'}"
    seeded = seed(database_url)
    port = free_port()
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": database_url, "HOTLINE_REDIS_URL": redis_url,
           "HOTLINE_EMBEDDED_WORKER": "false", "HOTLINE_MODEL_DIR": str(tmp / "no-model"),
           "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.ws_fanout:make_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(args.workers), "--log-level", "warning", "--ws", args.ws],
        cwd=REPO, env=env, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("bench: the server did not start")
            time.sleep(0.2)
        time.sleep(1.0)  # every worker up and subscribed
        # uvicorn's supervisor forks the workers (plus, with spawn, a small resource tracker: skip it by size)
        worker_pids = [p for p in children(server.pid) if rss_kb(p) > 20_000]
        result = asyncio.run(asyncio.wait_for(bench(args, base, seeded, worker_pids), args.timeout))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=15)
        if redis_proc is not None:
            redis_proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    result.update(date=datetime.now(UTC).astimezone().isoformat(timespec="seconds"), machine=machine(),
                  workers=args.workers, ws=args.ws, tickets=args.tickets, interval=args.interval,
                  worker_pids=worker_pids)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.write:
        write_results(result, " ".join([".venv/bin/python bench/ws_fanout.py", *sys.argv[1:]]))
    ok = result["missing"] == 0 and result["foreign_unit_events"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
