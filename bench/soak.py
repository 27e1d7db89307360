"""Soak: N minutes (default 60) of mixed traffic on PostgreSQL and Redis; memory and connections must stay flat.

Run (one command; PostgreSQL on 127.0.0.1:5432 with trust auth, redis-server installed):

    .venv/bin/python bench/soak.py                  # 60 minutes
    .venv/bin/python bench/soak.py --minutes 3      # a quick look (the windows shrink to fit)

What it runs (tests/processes.py): a fresh database on the machine's PostgreSQL, migrated, the demo city's directory
and accounts, the starter model; a Redis server of its own (so its client count is this run's alone);
``hotline serve --workers 2`` and one ``hotline worker`` (sweeps every second, its metrics on a port).

The load, paced at ``--rate`` operations per second from one thread: channel intake (``POST /api/inbound``, the web
channel's key), the agents' synchronous intake (``POST /api/intake``), every ticket walked through the workflow
(the channel's once the worker has made it: dispatch by the dispatcher, sign and reply by the unit's handler,
callback and close by the agent) so the open backlog levels off as a city's does, some signed tickets supervised
(督办) with a due time two minutes ahead and left signed past it so the worker's sweep raises the overdue notice,
reads of lists and details. ``--desks`` desk WebSockets (agents and unit handlers) stay open; one of them drops its
connection every ``--bounce-seconds`` and reconnects with its ``last_event_id``.

Every minute it samples the RSS and open fds of every server process (the API master, each API worker, the worker),
the database's connections and its oldest open transaction (``pg_stat_activity``), the open tickets, Redis's clients
(``CLIENT LIST``), the sweeps the worker ran and the load average. Errors: any 5xx, any request that got no answer,
any desk that stayed disconnected over 30 s (a drop the desk reconnected from is counted apart), and at the end any
event an agent desk never received.
Verdict: memory and connections flat, comparing the last ``--window`` minutes with the first ``--window`` minutes
after ``--warmup``: mean RSS total at most +10 %; database connections with no new high in the last window (a pool
keeps the connection a burst opened, a leak keeps adding) and no transaction open over 60 s (a forgotten session);
Redis clients no more than in the first window, open fds at most 4 more.

``--tracemalloc DIR``: every server process also dumps tracemalloc snapshots into DIR (bench/tracemalloc_hook), to
compare with ``bench/tracemalloc_compare.py``; tracing slows the servers, so such a run finds growth, it is no
verdict.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

import httpx
import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.states import STOPPED_STATES  # noqa: E402
from tests import infra  # noqa: E402
from tests.processes import CHANNEL_HEADERS, DeskSocket, Stack, free_port, seed_directory  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "complaints_labelled.jsonl"
DISCONNECTED_TOO_LONG = 30.0
ADOPT_AFTER = 5.0  # seconds after which the worker has made the ticket of an accepted message
HELD_TOO_LONG = 60.0  # seconds one database transaction may stay open (the longest request or sweep is far shorter)


def texts() -> list[str]:
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing (the soak sends real citizen messages)")
    raw = [json.loads(line)["text"] for line in DATA.open(encoding="utf-8")]
    return [t for t in raw if 20 <= len(t) <= 2000][:3000]


def proc_figures(pid: int) -> tuple[float, int]:
    """RSS in MiB and open fds of one process (0, 0 when it is gone)."""
    try:
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith("VmRSS:"))
        return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return 0.0, 0


def metric(text: str, name: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name == name)


class Traffic:
    """The mixed load: intake, workflow steps, reads; every answer's status counted."""

    def __init__(self, stack: Stack, corpus: list[str], units: list[dict[str, Any]]) -> None:
        self.stack, self.corpus = stack, corpus
        self.http = httpx.Client(base_url=stack.base, timeout=30)
        self.tokens = {who: stack.login(who) for who in ("agent", "dispatcher", "supervisor")}
        self.units = units
        self.unit_codes = {u["id"]: u["code"] for u in units}
        self.dispatch_to = itertools.cycle(units[:6])
        self.walking: deque[dict[str, Any]] = deque()
        self.accepted: deque[tuple[float, int]] = deque()  # (accepted at, inbound id) whose ticket is not walked yet
        self.held: deque[tuple[float, dict[str, Any]]] = deque()  # supervised tickets left signed past their due time
        self.status: Counter[int] = Counter()
        self.no_answer = 0
        self.failures: list[str] = []
        self.closed = self.supervised = 0
        self.n = itertools.count(1)

    def headers(self, who: str) -> dict[str, str]:
        if who not in self.tokens:
            self.tokens[who] = self.stack.login(who)
        return self.tokens[who]

    def call(self, method: str, path: str, who: str | None, body: Any = None) -> httpx.Response | None:
        headers = CHANNEL_HEADERS if who is None else self.headers(who)
        try:
            response = self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self.no_answer += 1
            self.failures.append(f"{method} {path}: {exc!r}")
            return None
        self.status[response.status_code] += 1
        if response.status_code >= 400:
            self.failures.append(f"{method} {path} → {response.status_code} {response.text[:200]}")
        return response

    def text(self) -> str:
        return f"{random.choice(self.corpus)}（{next(self.n)}）"

    def accept(self) -> None:
        r = self.call("POST", "/api/inbound", None,
                      {"channel": "web", "external_id": f"soak-{uuid.uuid4().hex}", "text": self.text()})
        if r is not None and r.status_code == 202:
            self.accepted.append((time.monotonic(), r.json()["inbound_id"]))

    def adopt(self) -> bool:
        """Walk the ticket the worker made of the oldest accepted message, so every ticket is closed in the end and
        the open backlog stays steady (as a city's does); False when there was nothing to adopt yet."""
        if not self.accepted or time.monotonic() - self.accepted[0][0] < ADOPT_AFTER:
            return False
        _, inbound_id = self.accepted.popleft()
        r = self.call("GET", f"/api/inbound/{inbound_id}", "admin")
        if r is None or r.status_code != 200:
            return True
        if r.json()["ticket_id"] is None:
            self.accepted.append((time.monotonic(), inbound_id))  # not processed yet: look again later
            return True
        ticket = self.call("GET", f"/api/tickets/{r.json()['ticket_id']}", "agent")
        if ticket is not None and ticket.status_code == 200:
            self.walking.append(ticket.json())
        return True

    def sync(self) -> None:
        r = self.call("POST", "/api/intake", "agent", {"channel": "phone", "text": self.text()})
        if r is not None and r.status_code == 201:
            self.walking.append(r.json())

    def step(self) -> None:
        """One workflow action on the oldest ticket still being walked."""
        while self.held and self.held[0][0] <= time.monotonic():
            self.walking.append(self.held.popleft()[1])
        if self.adopt():
            return None
        if not self.walking:
            return self.read()
        ticket = self.walking.popleft()
        path = f"/api/tickets/{ticket['id']}/actions"
        unit = self.unit_codes.get((ticket.get("unit") or {}).get("id"), "")
        status = ticket["status"]
        if status in ("received", "returned", "reopened"):
            r = self.call("POST", f"{path}/dispatch", "dispatcher", {"unit_id": next(self.dispatch_to)["id"]})
        elif status == "dispatched" and unit:
            r = self.call("POST", f"{path}/sign", unit, {"note": "已签收"})
        elif status == "signed" and unit and random.random() < 0.2 and not ticket.get("_supervised"):
            due = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
            body = {"note": "群众反映强烈，请加快办理", "due_at": due}
            r = self.call("POST", f"{path}/supervise", "supervisor", body)
            self.supervised += 1
            if r is not None and r.status_code == 200:  # replied only once the sweep has raised the overdue notice
                self.held.append((time.monotonic() + 130, {**r.json(), "_supervised": True}))
            return None
        elif status == "signed" and unit:
            r = self.call("POST", f"{path}/reply", unit, {"note": "已安排人员现场处理，问题已解决，已电话告知市民"})
        elif status == "replied":
            r = self.call("POST", f"{path}/callback", "agent", {"satisfaction": "satisfied", "solved": True})
        elif status in ("callback", "answered"):
            r = self.call("POST", f"{path}/close", "agent", {})
            self.closed += int(r is not None and r.status_code == 200)
            return None
        else:
            return None
        if r is not None and r.status_code == 200:
            self.walking.append({**r.json(), "_supervised": ticket.get("_supervised", False)})
        return None

    def read(self) -> None:
        choice = random.random()
        if choice < 0.4:
            self.call("GET", "/api/tickets?limit=50", "agent")
        elif choice < 0.7 and self.walking:
            ticket = random.choice(list(self.walking))
            unit = self.unit_codes.get((ticket.get("unit") or {}).get("id"))
            self.call("GET", f"/api/tickets/{ticket['id']}", unit or "agent")
        else:
            self.call("GET", "/api/tickets?limit=50", self.units[random.randrange(6)]["code"])

    # Each ticket takes about 6 steps (adopt, dispatch, sign, maybe supervise, reply, callback, close): 2 tickets
    # per 16 operations leave the 12 steps enough to close them all, so the open backlog levels off.
    MIX = ("accept", "sync", "step", "step", "step", "step", "step", "step", "read", "step", "step", "step", "step",
           "step", "step", "read")

    def one(self, k: int) -> None:
        getattr(self, self.MIX[k % len(self.MIX)])()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=float, default=3.0, help="operations per second")
    parser.add_argument("--desks", type=int, default=6)
    parser.add_argument("--bounce-seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=int, default=5, help="minutes left out of the comparison")
    parser.add_argument("--window", type=int, default=10, help="minutes compared at the start and the end")
    parser.add_argument("--sample-seconds", type=float, default=60.0)
    parser.add_argument("--tracemalloc", type=Path, default=None, metavar="DIR",
                        help="every server process traces allocations and dumps a snapshot a minute into DIR "
                             "(bench/tracemalloc_hook; slows the servers, for finding growth, not for the verdict)")
    args = parser.parse_args()
    warmup = min(args.warmup, args.minutes // 4)
    window = max(1, min(args.window, (args.minutes - warmup) // 2))
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        raise SystemExit("redis-server is needed")
    started_at = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    url = infra.fresh_postgres_database()
    db_name = url.rsplit("/", 1)[1]
    admin_dsn = url.rsplit("/", 1)[0].replace("+psycopg", "") + "/postgres"
    redis_server = infra.ThrowawayRedis(redis_binary)
    redis_server.start()
    worker_port = free_port()
    stack = Stack(url, tmp, redis_url=redis_server.url,
                  extra_env={"HOTLINE_MODEL_DIR": str(tmp / "model"), "HOTLINE_WORKER_METRICS_PORT": str(worker_port),
                             "HOTLINE_WORKER_METRICS_HOST": "127.0.0.1", "HOTLINE_LOG_LEVEL": "WARNING"})
    desks: list[DeskSocket] = []
    try:
        for step in (["migrate"], ["nlp", "starter"]):
            subprocess.run([sys.executable, "-m", "hotline.cli", *step], cwd=ROOT, env=stack.env(), check=True,
                           stdout=subprocess.DEVNULL)
        seed_directory(url, tmp)
        if args.tracemalloc is not None:  # the servers only, not the set-up steps above
            args.tracemalloc.mkdir(parents=True, exist_ok=True)
            stack.extra_env.update({"PYTHONPATH": str(ROOT / "bench" / "tracemalloc_hook"),
                                    "HOTLINE_BENCH_TRACEMALLOC_DIR": str(args.tracemalloc.resolve())})
        server = stack.serve(workers=2)
        worker = stack.worker()
        admin = stack.login("admin")
        units = [u for u in httpx.get(f"{stack.base}/api/units", headers=admin, timeout=30).json()]
        traffic = Traffic(stack, texts(), units)
        ws = f"ws://127.0.0.1:{stack.port}/ws"
        for i in range(args.desks):
            who = "agent" if i % 2 == 0 else units[(i // 2) % 6]["code"]
            desks.append(DeskSocket(ws, traffic.headers(who)["Authorization"].split()[1]).start())
        agent_desks = desks[::2]
        rows: list[dict[str, Any]] = []
        too_long: set[int] = set()
        rusage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        next_sample, next_bounce, k = t0 + args.sample_seconds, t0 + args.bounce_seconds, 0
        last_status: Counter[int] = Counter()
        last_sweeps = 0.0
        print(f"soak: {args.minutes} min on {db_name}, API {stack.base}, logs in {tmp}", file=sys.stderr, flush=True)
        while (now := time.monotonic()) < t0 + args.minutes * 60:
            traffic.one(k)
            k += 1
            for i, desk in enumerate(desks):
                if not desk.connected and desk.disconnected_at and now - desk.disconnected_at > DISCONNECTED_TOO_LONG:
                    too_long.add(i)
            if now >= next_sample:
                next_sample += args.sample_seconds
                pids = {"api": server.pid, **{f"api-w{j + 1}": p for j, p in enumerate(server.children())},
                        "worker": worker.pid}
                figures = {name: proc_figures(pid) for name, pid in pids.items()}
                with psycopg.connect(admin_dsn, autocommit=True) as conn:
                    db_conns, oldest_xact = conn.execute(
                        "SELECT count(*), coalesce(max(extract(epoch FROM now() - xact_start)), 0) "
                        "FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                        (db_name,)).fetchone()
                with psycopg.connect(url.replace("+psycopg", "")) as conn:
                    tickets, open_tickets = conn.execute(
                        "SELECT count(*), count(*) FILTER (WHERE status <> ALL(%s)) FROM tickets",
                        ([str(state) for state in STOPPED_STATES],)).fetchone()
                    notices = conn.execute("SELECT count(*) FROM ticket_events WHERE type = "
                                           "'supervision_overdue'").fetchone()[0]
                redis_clients = len(redis.Redis.from_url(redis_server.url).client_list()) - 1  # minus this one
                try:
                    sweeps = metric(httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=10).text,
                                    "hotline_sweep_duration_seconds_count")
                except httpx.HTTPError:
                    sweeps = last_sweeps
                status = traffic.status - last_status
                last_status = Counter(traffic.status)
                row = {
                    "minute": round((now - t0) / 60),
                    "requests": sum(status.values()),
                    "5xx": sum(n for code, n in status.items() if code >= 500),
                    "4xx": sum(n for code, n in status.items() if 400 <= code < 500),
                    "rss": {name: round(rss, 1) for name, (rss, _) in figures.items()},
                    "rss_total": round(sum(rss for rss, _ in figures.values()), 1),
                    "fds": sum(fds for _, fds in figures.values()),
                    "db_conns": db_conns, "oldest_xact_s": round(float(oldest_xact), 1),
                    "redis_clients": redis_clients,
                    "desks_up": sum(d.connected for d in desks), "sweeps": int(sweeps - last_sweeps),
                    "tickets": tickets, "open": open_tickets, "supervision_overdue": notices,
                    "load1": round(os.getloadavg()[0], 2),
                }
                last_sweeps = sweeps
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
            if now >= next_bounce:  # after the sample, so a desk bounced this instant is not counted as down
                desks[(k // 7) % len(desks)].bounce()
                next_bounce += args.bounce_seconds
            time.sleep(max(0.0, t0 + k / args.rate - time.monotonic()))
        wall = time.monotonic() - t0
        rusage1 = resource.getrusage(resource.RUSAGE_SELF)
        driver_cpu = (rusage1.ru_utime + rusage1.ru_stime - rusage0.ru_utime - rusage0.ru_stime) / wall / (
            os.cpu_count() or 1)
        time.sleep(5)  # the last events reach the desks
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            all_ids = {r[0] for r in conn.execute("SELECT id FROM ticket_events")}
        missed = max(len(all_ids - set(d.seen)) for d in agent_desks)
        duplicates = sum(len(c) - len(set(c)) for d in desks for c in d.per_connection)
        drops = sum(len(d.close_codes) + len(d.errors) for d in desks)
        settled = [r for r in rows if r["minute"] > warmup]
        first = [r for r in rows if warmup < r["minute"] <= warmup + window]
        last = rows[-window:]
        growth = mean(r["rss_total"] for r in last) / mean(r["rss_total"] for r in first) - 1
        flat = {
            "memory (RSS total, mean)": growth <= 0.10,
            # A pool opens a connection when a burst needs one more at once and keeps it: the count steps up to
            # the processes' working set and stays. A leak keeps going up with time. So: the highest count after
            # warm-up is reached before the last window (no new high in it), and no connection is held in one
            # transaction over a minute (a session checked out and forgotten sits "idle in transaction").
            "database connections (no new high in the last window)":
                max(r["db_conns"] for r in last) <= max(r["db_conns"] for r in settled[:-window] or first),
            f"database transactions (none open > {HELD_TOO_LONG:.0f} s)":
                max(r["oldest_xact_s"] for r in settled) <= HELD_TOO_LONG,
            "redis clients (max)": max(r["redis_clients"] for r in last) <= max(r["redis_clients"] for r in first),
            "open fds (max)": max(r["fds"] for r in last) <= max(r["fds"] for r in first) + 4,
        }
        errors = {"5xx": sum(n for c, n in traffic.status.items() if c >= 500), "no answer": traffic.no_answer,
                  "desks disconnected > 30 s": len(too_long), "events an agent desk missed": missed,
                  "events delivered twice on one connection": duplicates}
        print(f"\n## Soak ({platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"{started_at:%Y-%m-%d %H:%M} UTC)\n")
        print(f"`bench/soak.py {' '.join(sys.argv[1:])}`: {args.minutes} min at {args.rate} operations/s, "
              f"{args.desks} desks (one bounced every {args.bounce_seconds:.0f} s), warm-up {warmup} min, "
              f"windows of {window} min; the load generator used {driver_cpu:.1%} of the machine's CPU\n")
        names = list(rows[-1]["rss"])
        print("| min | requests | 5xx | 4xx | " + " | ".join(f"RSS {n} MiB" for n in names) +
              " | RSS total | fds | DB conns | oldest xact s | Redis clients | desks up | sweeps | tickets "
              "| open | 督办 overdue | load |")
        print("|" + "---|" * (15 + len(names)))
        for r in rows:
            print(f"| {r['minute']} | {r['requests']} | {r['5xx']} | {r['4xx']} | " +
                  " | ".join(str(r["rss"].get(n, "")) for n in names) +
                  f" | {r['rss_total']} | {r['fds']} | {r['db_conns']} | {r['oldest_xact_s']} | {r['redis_clients']} | "
                  f"{r['desks_up']} | "
                  f"{r['sweeps']} | {r['tickets']} | {r['open']} | {r['supervision_overdue']} | {r['load1']} |")
        print(f"\nTotals: {dict(sorted(traffic.status.items()))} answers, {traffic.closed} tickets walked to "
              f"closed, {traffic.supervised} supervised; desk drops reconnected from: {drops}; "
              f"RSS growth last vs first window: {growth:+.1%}")
        print(f"Flat: {flat}\nErrors: {errors}")
        for failure in traffic.failures[:10]:
            print(f"  {failure}")
        ok = all(flat.values()) and not any(errors.values())
        print(f"\nVerdict: {'PASS: memory and connections flat, 0 errors' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        for desk in desks:
            desk.close()
        stack.close()
        redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
