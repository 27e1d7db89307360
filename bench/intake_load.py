"""Intake under load: the durable channel intake and the agents' synchronous intake against a plain reference.

Run (one command; needs PostgreSQL on 127.0.0.1:5432 with trust auth, Redis on 127.0.0.1:6379, and Debian's wrk):

    .venv/bin/python bench/intake_load.py                         # 2 rounds × 3 endpoints × 20 s, then processing
    .venv/bin/python bench/intake_load.py --seconds 10 --rounds 1 # a quicker look
    .venv/bin/python bench/intake_load.py --sustain 600           # processing sustained for 10 minutes
    .venv/bin/python bench/intake_load.py --seconds 10 --rounds 1 --no-processing --only accept \
        --profile /tmp/prof                                       # the HTTP endpoints only, py-spy per API worker

What it does: creates a fresh PostgreSQL database, migrates it, trains the starter model and seeds the demo city,
starts ``hotline serve --workers 2`` (Redis bus, no embedded worker) and the plain reference (bench/plain_insert_app.py:
FastAPI + asyncpg inserting a ticket and an event and publishing to Redis, also 2 workers), then alternates wrk runs
(32 connections, 2 threads) over the three endpoints, each request a real citizen message of ../shared/data (about
420 characters) with a new external id:

- plain:   POST /plain (the reference);
- accept:  POST /api/inbound with the web channel's key (store and acknowledge; the worker makes the ticket later);
- sync:    POST /api/intake with an agent's token (analysis, routing and the ticket before the answer).

Afterwards it starts two ``hotline worker`` processes and measures how fast the accepted backlog becomes tickets
(classified, routed, stored with their events, published), then checks that every acknowledged message is exactly
one ticket. wrk's own CPU share (its user+system time over wall time and cores) is reported, as the load generator
competes with the servers on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from demo_city import REDIS, demo_city, libpq_dsn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "complaints_labelled.jsonl"
BIN = Path(sys.executable).parent

WRK_SCRIPT = r"""
local texts = {}
for line in io.lines(os.getenv("BENCH_TEXTS")) do texts[#texts + 1] = line end
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("tid", threads) end
local counter = 0
request = function()
  counter = counter + 1
  local text = texts[(counter % #texts) + 1]
  local body = '{"channel":"' .. os.getenv("BENCH_CHANNEL") .. '","external_id":"' .. os.getenv("BENCH_RUN") ..
    "-" .. tostring(tid) .. "-" .. counter .. '","text":"' .. text .. '"}'
  return wrk.format("POST", nil, nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("TOTAL %d ERRORS %d\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status +
    summary.errors.timeout))
  for _, p in pairs({50, 99}) do io.write(string.format("P%d %.3f\n", p, latency:percentile(p) / 1000.0)) end
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def texts_file(directory: Path) -> Path:
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing (the benchmark sends real citizen messages)")
    raw = [json.loads(line)["text"] for line in DATA.open(encoding="utf-8")]
    chosen = [t.replace("\n", " ") for t in raw if len(t) >= 200][:2000]
    path = directory / "texts.txt"
    path.write_text("\n".join(json.dumps(t, ensure_ascii=False)[1:-1] for t in chosen) + "\n", encoding="utf-8")
    return path


def run_wrk(url: str, headers: dict[str, str], channel: str, seconds: int, texts: Path, script: Path,
            connections: int) -> dict[str, float]:
    env = {**os.environ, "BENCH_TEXTS": str(texts), "BENCH_CHANNEL": channel, "BENCH_RUN": uuid.uuid4().hex[:8]}
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    output = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"wrk failed:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total, errors = (int(x) for x in re.search(r"TOTAL (\d+) ERRORS (\d+)", output).groups())  # type: ignore[union-attr]
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    p50 = float(re.search(r"P50 ([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = float(re.search(r"P99 ([\d.]+)", output).group(1))  # type: ignore[union-attr]
    cpu = (usage.ru_utime + usage.ru_stime) / wall / (os.cpu_count() or 1)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "total": total, "errors": errors, "non2xx": non2xx,
            "wrk_cpu_share": cpu}


def idle_latency(url: str, token: str, texts: Path, n: int) -> dict[str, float]:
    """``n`` synchronous intakes one at a time (after 5 not counted, which warm the caches), in ms."""
    lines = texts.read_text(encoding="utf-8").splitlines()
    run = uuid.uuid4().hex[:8]
    took: list[float] = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for i in range(n + 5):
            text = json.loads(f'"{lines[i % len(lines)]}"')  # the file holds them JSON-escaped for wrk's script
            body = {"channel": "phone", "external_id": f"idle-{run}-{i}", "text": text}
            started = time.perf_counter()
            response = client.post(url, json=body)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code not in (200, 201, 422):
                raise SystemExit(f"idle intake failed: {response.status_code} {response.text}")
            if i >= 5:
                took.append(elapsed)
    took.sort()
    return {"p50_ms": took[len(took) // 2], "p90_ms": took[int(len(took) * 0.9)], "max_ms": took[-1]}


def batch_sizes(base: str) -> tuple[float, float]:
    """How many synchronous intakes the API's group-commit batches held and how many batches there were so far
    (``hotline_intake_batch_size``; 0, 0 from code before the group commit)."""
    admin = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "admin123"},
                       timeout=30).json()["access_token"]
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=30).text
    found = dict(re.findall(r"^hotline_intake_batch_size_(sum|count) ([\d.e+]+)$", text, re.MULTILINE))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used (their own threads; /proc/PID/stat), to judge the servers' work per
    request on a machine other load shares: wall-clock rates fall with that load, CPU per request hardly."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def machine_cpu_seconds() -> float:
    """CPU time all cores have spent busy since boot (/proc/stat: everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def api_workers(server_pid: int) -> list[int]:
    """The uvicorn worker processes under ``hotline serve`` (its children but the resource tracker)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(pid) for pid in children
            if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]


def api_worker_restarts(log: Path) -> int:
    """How often uvicorn's supervisor replaced an API worker it found dead or not answering (each one a cold start
    of the application that serves nothing meanwhile)."""
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if "Child process [" in line and "died" in line)


def profile(directory: Path, label: str, pids: list[int], seconds: int) -> list[subprocess.Popen[bytes]]:
    """py-spy (in the same virtualenv) recording each API worker for the length of one wrk run, sampling the thread
    that holds the GIL (where the Python CPU goes)."""
    directory.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(seconds),
                              "--gil", "--format", "raw", "--output", str(directory / f"{label}-{pid}.txt"),
                              "--nonblocking"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]


def print_rounds(args: argparse.Namespace, results: dict[str, list[dict[str, float]]],
                 targets: dict[str, object]) -> None:
    print("| endpoint | round | requests/s | p50 ms | p99 ms | vs plain | wrk CPU share | server CPU ms/request |")
    print("|---|---|---|---|---|---|---|---|")
    for i in range(args.rounds):
        ref = results["plain"][i]["rps"]
        for name in targets:
            r = results[name][i]
            print(f"| {name} | {i + 1} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                  f"{r['rps'] / ref:.2f} | {r['wrk_cpu_share']:.0%} | {r.get('server_cpu_ms', 0):.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="hotline worker processes for the processing phase")
    parser.add_argument("--sustain", type=int, default=0,
                        help="keep accepting at a steady rate for this many seconds while the workers process")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default="plain,accept,sync",
                        help="comma-separated endpoints to load (plain is always run, as the reference)")
    parser.add_argument("--no-processing", action="store_true",
                        help="skip the worker phase (a quick look at the HTTP endpoints only)")
    parser.add_argument("--idle", type=int, default=0, metavar="N",
                        help="before the rounds, N synchronous intakes one after the other on the otherwise idle "
                             "server: the latency of a request alone (p50, p90, max)")
    parser.add_argument("--profile", metavar="DIR",
                        help="record each API worker with py-spy during every wrk run, and the workers and API "
                             "workers for 30 s of the processing phase (raw py-spy files in DIR)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")

    tmp = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    log = (tmp / "servers.log").open("wb")
    url, env = demo_city(tmp / "model", {"HOTLINE_EMBEDDED_WORKER": "false",
                                         "HOTLINE_SWEEP_INTERVAL_SECONDS": "3600"}, log)
    dsn = libpq_dsn(url)
    procs: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(command, cwd=ROOT, env={**env, **(extra or {})}, stdout=log, stderr=log,
                                start_new_session=True)
        procs.append(proc)
        return proc

    try:
        port, plain_port = free_port(), free_port()
        start([str(BIN / "hotline"), "serve", "--port", str(port), "--workers", "2"])
        start([str(BIN / "uvicorn"), "plain_insert_app:app", "--app-dir", str(ROOT / "bench"), "--port",
               str(plain_port), "--workers", "2", "--log-level", "warning",
               # as ``hotline serve`` does: with uvicorn's 5 s a worker starting on a busy machine is killed and
               # restarted over and over, and the reference would run on one worker
               "--timeout-worker-healthcheck", "60"],
              {"PLAIN_DSN": dsn, "PLAIN_REDIS": REDIS})
        base, plain = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{plain_port}"
        wait_for(f"{base}/healthz")
        wait_for(f"{plain}/docs")
        token = httpx.post(f"{base}/api/auth/login", json={"username": "agent", "password": "agent123"},
                           timeout=30).json()["access_token"]
        texts = texts_file(tmp)
        idle: dict[str, float] | None = None
        if args.idle:
            api = api_workers(procs[0].pid)
            cpu_before = cpu_seconds(api)
            idle = idle_latency(f"{base}/api/intake", token, texts, args.idle)
            idle["server_cpu_ms"] = (cpu_seconds(api) - cpu_before) * 1000 / (args.idle + 5)
        script = tmp / "intake.lua"
        script.write_text(WRK_SCRIPT)
        targets = {
            "plain": (f"{plain}/plain", {"Content-Type": "application/json"}, "web"),
            "accept": (f"{base}/api/inbound", {"Content-Type": "application/json",
                                              "Authorization": "Bearer demo-web-key"}, "web"),
            "sync": (f"{base}/api/intake", {"Content-Type": "application/json",
                                           "Authorization": f"Bearer {token}"}, "phone"),
        }
        chosen = {"plain", *args.only.split(",")}
        targets = {name: target for name, target in targets.items() if name in chosen}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        with psycopg.connect(dsn) as conn:
            web_before = conn.execute("SELECT count(*) FROM inbound_messages WHERE channel = 'web'").fetchone()[0]
        batched_before = batch_sizes(base)
        for round_no in range(args.rounds):
            for name, (target, headers, channel) in targets.items():
                spies = [] if not args.profile or name == "plain" else profile(
                    Path(args.profile), f"{name}-{round_no + 1}", api_workers(procs[0].pid), args.seconds)
                servers = api_workers(procs[1 if name == "plain" else 0].pid)
                cpu_before = cpu_seconds(servers)
                results[name].append(run_wrk(target, headers, channel, args.seconds, texts, script,
                                             args.connections))
                results[name][-1]["server_cpu_ms"] = ((cpu_seconds(servers) - cpu_before) * 1000
                                                      / max(results[name][-1]["total"], 1))
                for spy in spies:
                    spy.wait()
                print(name, results[name][-1], file=sys.stderr)
        restarts = api_worker_restarts(tmp / "servers.log")
        batched = batch_sizes(base)
        if "sync" in targets and batched[1] > batched_before[1]:
            print(f"Synchronous intakes per transaction in the rounds (group commit): "
                  f"{(batched[0] - batched_before[0]) / (batched[1] - batched_before[1]):.1f} on average over "
                  f"{batched[1] - batched_before[1]:.0f} batches")
        if idle:
            print(f"Idle: {args.idle} synchronous intakes one after the other: p50 {idle['p50_ms']:.1f} ms, "
                  f"p90 {idle['p90_ms']:.1f} ms, max {idle['max_ms']:.1f} ms; API CPU {idle['server_cpu_ms']:.1f} ms "
                  "per request")
        if args.no_processing:
            print_rounds(args, results, targets)
            print(f"API workers restarted by uvicorn's supervisor during the rounds: {restarts}")
            return 0

        time.sleep(10)  # requests still in flight when wrk stopped finish on the server
        with psycopg.connect(dsn) as conn:
            backlog = conn.execute("SELECT count(*) FROM inbound_messages WHERE state = 'accepted'").fetchone()[0]
            tickets_before = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        started = time.monotonic()
        api = api_workers(procs[0].pid)
        api_cpu_before, machine_cpu_before = cpu_seconds(api), machine_cpu_seconds()
        workers = [start([str(BIN / "hotline"), "worker"]) for _ in range(args.workers)]
        if args.profile:  # the processing phase too: the workers and the API workers following their tickets
            time.sleep(20)  # past the workers' start (imports, model load)
            profile(Path(args.profile), "processing", [w.pid for w in workers] + api, 30)
        worker_cpu = 0.0
        sustain_result: dict[str, float] | None = None
        if args.sustain:
            target, headers, channel = targets["accept"]
            sustain_result = run_wrk(target, headers, channel, args.sustain, texts, script, 4)
        with psycopg.connect(dsn) as conn:
            while True:
                left = conn.execute(
                    "SELECT count(*) FROM inbound_messages WHERE state IN ('accepted', 'processing')").fetchone()[0]
                if left == 0:
                    break
                if time.monotonic() - started > 3600:
                    raise SystemExit(f"the backlog did not drain within an hour ({left} left)")
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            worker_cpu = cpu_seconds([w.pid for w in workers])
            api_cpu, machine_cpu = cpu_seconds(api) - api_cpu_before, machine_cpu_seconds() - machine_cpu_before
            processed = conn.execute("SELECT count(*) FROM inbound_messages WHERE processed_at IS NOT NULL "
                                     "AND channel = 'web'").fetchone()[0] - web_before
            accepted_rows = conn.execute(
                "SELECT count(*) FROM inbound_messages WHERE channel = 'web'").fetchone()[0] - web_before
            linked = conn.execute("SELECT count(DISTINCT ticket_id) FROM inbound_messages "
                                  "WHERE channel = 'web'").fetchone()[0] - web_before
            failed = conn.execute("SELECT count(*) FROM inbound_messages WHERE state = 'failed'").fetchone()[0]
            tickets_after = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        for proc in workers:
            os.killpg(proc.pid, signal.SIGTERM)
        acknowledged = sum(r["total"] - r["non2xx"] - r["errors"] for r in results["accept"])
        if sustain_result:
            acknowledged += int(sustain_result["total"] - sustain_result["non2xx"] - sustain_result["errors"])
        report = {
            "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(["bench/intake_load.py", *sys.argv[1:]]),
            "rounds": results,
            # every ticket made while the workers ran (the backlog plus what --sustain accepted meanwhile), over the
            # time until the backlog was drained
            "processing": {"backlog": backlog, "seconds": round(elapsed, 1), "tickets": tickets_after - tickets_before,
                           "tickets_per_s": round((tickets_after - tickets_before) / elapsed, 1) if elapsed else None,
                           "workers": args.workers, "sustain": sustain_result, "drained": True,
                           # CPU per ticket made: the workers (from their start, imports and model load included),
                           # the API processes (indexing each new ticket from its bus notice), the whole machine
                           # (PostgreSQL, Redis and wrk too)
                           "cpu_ms_per_ticket": {
                               name: round(seconds * 1000 / max(tickets_after - tickets_before, 1), 2)
                               for name, seconds in (("workers", worker_cpu), ("api", api_cpu),
                                                     ("machine", machine_cpu))}},
            "api_worker_restarts": restarts,
            "exactly_once": {"acknowledged": acknowledged, "stored": accepted_rows, "processed": processed,
                             "distinct_tickets": linked, "failed": failed,
                             "new_tickets": tickets_after - tickets_before},
        }
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            print(f"## Intake under load ({report['machine']}, {report['date']})\n")
            print(f"`{report['command']}`, {args.connections} connections, {args.seconds} s per run\n")
            print_rounds(args, results, targets)
            print(f"API workers restarted by uvicorn's supervisor during the rounds: {restarts}")
            p = report["processing"]
            print(f"\nProcessing: {p['tickets']} tickets ({p['backlog']} accepted before the workers started"
                  + (f", {sustain_result['total']:.0f} accepted meanwhile at {sustain_result['rps']:.0f}/s over "
                     f"{args.sustain} s" if sustain_result else "")
                  + f") in {p['seconds']} s by {args.workers} workers, backlog drained = "
                  f"**{p['tickets_per_s']} tickets/s**; CPU ms per ticket: {p['cpu_ms_per_ticket']}")
            once = report["exactly_once"]
            verdict = ("every acknowledged message is stored and exactly one ticket"
                       if once["acknowledged"] <= once["stored"] == once["processed"] == once["distinct_tickets"]
                       and once["new_tickets"] == once["stored"] and not once["failed"] else "MISMATCH")
            print(f"Exactly once: {once} → {verdict}")
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
