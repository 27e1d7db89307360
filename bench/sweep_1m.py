"""The deadline sweep against 1,000,000 open tickets in PostgreSQL (plus twice as many finished ones): time and plans.

Usage: ``.venv/bin/python bench/sweep_1m.py [--tickets 1000000] [--closed-factor 2] [--server URL] [--keep]
[--out FILE.md]`` (default output: var/routing_db_results.md)

Creates a fresh database on the server (``--server``, else the one the tests use: HOTLINE_TEST_POSTGRES_URL, the
local server on 5432, or a throwaway one started from the installed binaries), migrates it, and fills it with
``generate_series`` (no Python loop): N open tickets (dispatched/signed/returned, the states the sweep chases) whose
thresholds are mostly in the future, a small share due (75 % reminder, overdue, escalation), two events per ticket
(2 N rows in ``ticket_events``) and a few recent refused send-backs for the accountability rules; and
``--closed-factor`` × N finished tickets (closed, called back, replied, answered, merged) as the workflow leaves them:
every threshold long past and ``notice_level = workflow.NOTICES_DONE``, so they are in none of the partial indexes.
Then it runs:

1. ``EXPLAIN (ANALYZE, BUFFERS)`` of each query the sweep uses to *find* due rows (the partial indexes
   ``ix_tickets_sweep_*``, the event cursor on ``ix_ticket_events_type_created``, the supervision-order index);
   the finished tickets' past thresholds would all match ``threshold <= now`` — the plans show they are not read;
2. the size of each partial index next to the table's (they hold the open tickets only);
3. one full sweep (finding + raising every due notice + opening cases, committed), timed;
4. a second sweep with nothing left to do, timed (the steady-state cost of a sweep every 30 s).

Results go to the markdown file with the machine (nproc, CPU model), the date and the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from hotline.db import make_engine, make_sessionmaker
from hotline.migrate import upgrade
from hotline.models import SupervisionOrder, TicketEvent
from hotline.sweep import ACTIVE, THRESHOLDS, due_query, sweep
from hotline.workflow import DEADLINE_STATES, NOTICES_DONE

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def server_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    from tests import infra

    url = infra.postgres_server()
    if url is None:
        raise SystemExit("no PostgreSQL server found; pass --server postgresql+psycopg://user@host:port/db")
    return url


FILL = """
INSERT INTO areas (id, code, name, level, aliases, active) VALUES (1, 'mh', '明湖市', 'city', '[]', true);
INSERT INTO units (id, code, name, kind, area_id, active) VALUES (1, 'mh-cgj', '明湖市城市管理局', 'bureau', 1, true);
INSERT INTO categories (id, code, name, level, urgent, active) VALUES (1, '15', '城市管理', 1, false, true);
INSERT INTO tickets (id, number, channel, title, text, kind, urgent, status, category_id, area_id, confidential,
                     lead_unit_id, analysis, received_at, dispatched_at, sign_due, reply_due, reply_warn_at,
                     escalate_at, notice_level, extension_pending, version, updated_at)
SELECT i, lpad(i::text, 14, '0'), 'phone', '', '占道经营', 'help', false,
       (ARRAY['dispatched','signed','returned'])[1 + i % 3],
       1, 1, false, 1, '{}',
       :now - interval '2 days', :now - interval '2 days', :now - interval '1 day',
       CASE WHEN i % 5000 = 2 THEN :now - interval '5 days'
            WHEN i % 2000 = 1 THEN :now - interval '1 hour'
            WHEN i % 1000 = 0 THEN :now + interval '1 hour'
            ELSE :now + (i % 43200) * interval '1 minute' + interval '3 days' END,
       CASE WHEN i % 5000 = 2 THEN :now - interval '6 days'
            WHEN i % 2000 = 1 THEN :now - interval '2 days'
            WHEN i % 1000 = 0 THEN :now - interval '1 hour'
            ELSE :now + (i % 43200) * interval '1 minute' + interval '1 day' END,
       CASE WHEN i % 5000 = 2 THEN :now - interval '1 day'
            WHEN i % 2000 = 1 THEN :now + interval '2 days'
            WHEN i % 1000 = 0 THEN :now + interval '4 days'
            ELSE :now + (i % 43200) * interval '1 minute' + interval '6 days' END,
       0, false, 1, :now
FROM generate_series(1, :n) AS i;
INSERT INTO tickets (id, number, channel, title, text, kind, urgent, status, category_id, area_id, confidential,
                     lead_unit_id, analysis, received_at, dispatched_at, sign_due, reply_due, reply_warn_at,
                     escalate_at, notice_level, replied_at, closed_at, extension_pending, version, updated_at)
SELECT i, lpad(i::text, 14, '0'), 'phone', '', '占道经营', 'help', false,
       (ARRAY['closed','closed','closed','callback','replied','answered','merged'])[1 + i % 7],
       1, 1, false, 1, '{}',
       :now - (30 + i % 700) * interval '1 day', :now - (30 + i % 700) * interval '1 day',
       :now - (29 + i % 700) * interval '1 day', :now - (25 + i % 700) * interval '1 day',
       :now - (26 + i % 700) * interval '1 day', :now - (20 + i % 700) * interval '1 day',
       :done, :now - (26 + i % 700) * interval '1 day', :now - (24 + i % 700) * interval '1 day', false, 1,
       :now - (24 + i % 700) * interval '1 day'
FROM generate_series(:n + 1, :n + :closed) AS i;
INSERT INTO ticket_events (ticket_id, type, actor_name, note, data, created_at)
SELECT i, 'receive', '话务员', '', '{}', :now - interval '2 days' - (i % 1440) * interval '1 minute'
FROM generate_series(1, :n) AS i;
INSERT INTO ticket_events (ticket_id, type, actor_name, note, data, created_at)
SELECT i, 'dispatch', '派单员', '', '{"unit_id": 1}', :now - interval '2 days' + (i % 1440) * interval '1 second'
FROM generate_series(1, :n) AS i;
INSERT INTO ticket_events (ticket_id, type, actor_name, note, data, created_at)
SELECT 1 + ((i / 2) * 997) % :n, 'refuse_return', '派单员', '属地管理', '{"unit_id": 1}', :now - interval '5 minutes'
FROM generate_series(0, 199) AS i;
INSERT INTO sweep_cursors (name, at) VALUES ('accountability', :now - interval '1 hour');
SELECT setval('tickets_id_seq', :n + :closed);
"""


def explain(conn: psycopg.Connection, sql: str) -> tuple[str, float]:
    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()
    plan = "\n".join(r[0] for r in rows)
    ms = next((float(r[0].split(":")[1].split()[0]) for r in rows if r[0].startswith("Execution Time")), 0.0)
    return plan, ms


def literal(stmt: object) -> str:
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="open tickets (the sweep's working set)")
    parser.add_argument("--closed-factor", type=float, default=2.0,
                        help="finished tickets per open ticket (default 2: history twice the open load)")
    parser.add_argument("--server", help="PostgreSQL URL with rights to CREATE DATABASE")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "routing_db_results.md")
    args = parser.parse_args()

    server = server_url(args.server)
    name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
    plain = server.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    now = datetime.now(UTC)
    closed = int(args.tickets * args.closed_factor)
    assert set(ACTIVE) == DEADLINE_STATES
    report: list[str] = []
    try:
        t0 = time.perf_counter()
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            for statement in [s for s in FILL.split(";\n") if s.strip()]:
                conn.execute(text(statement), {"now": now, "n": args.tickets, "closed": closed, "done": NOTICES_DONE})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        fill_s = time.perf_counter() - t0
        print(f"filled {args.tickets:,} open and {closed:,} finished tickets and {2 * args.tickets + 200:,} events "
              f"in {fill_s:.1f} s")

        queries: list[tuple[str, str]] = []
        for level, column_name, event_type in THRESHOLDS:
            stmt = due_query(level, column_name, now, 5000)  # exactly the worker's query
            queries.append((f"find {event_type} (notice_level < {level}, {column_name} <= now)", literal(stmt)))
        cursor = (select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.type, TicketEvent.data)
                  .where(TicketEvent.type.in_(("refuse_return", "close")),
                         TicketEvent.created_at > text(f"'{now.isoformat()}'::timestamptz - interval '70 minutes'"),
                         TicketEvent.created_at <= now)
                  .order_by(TicketEvent.created_at, TicketEvent.id).limit(5000))
        queries.append(("accountability rules: events since the cursor", literal(cursor)))
        orders = (select(SupervisionOrder.id)
                  .where(SupervisionOrder.state == "open", ~SupervisionOrder.overdue_notified,
                         SupervisionOrder.due_at <= now)
                  .limit(5000))
        queries.append(("overdue supervision orders", literal(orders)))

        plans: list[tuple[str, str, str, float]] = []
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            for label, sql in queries:
                plan, ms = explain(conn, sql)
                plans.append((label, sql, plan, ms))
                print(f"{label}: {ms:.2f} ms")
            sizes = conn.execute(
                "SELECT c.relname, c.reltuples::bigint, pg_relation_size(c.oid) FROM pg_class c "
                "WHERE c.relname = 'tickets' OR c.relname LIKE 'ix_tickets_sweep_%' ORDER BY c.relname"
            ).fetchall()
            conn.rollback()
        for relname, tuples, size in sizes:
            print(f"{relname}: {tuples:,} rows, {size / 1e6:.1f} MB")

        sessions = make_sessionmaker(engine)
        cases: dict[str, int] = {}
        with sessions() as session:
            t1 = time.perf_counter()
            sent = sweep(session, now=now, cases=cases)
            session.commit()
            first_s = time.perf_counter() - t1
        with sessions() as session:
            t2 = time.perf_counter()
            again = sweep(session, now=now)
            session.commit()
            second_s = time.perf_counter() - t2
        print(f"first sweep {first_s:.3f} s: {sent} cases {cases}; second sweep {second_s:.3f} s: {again}")
        engine.dispose()

        pg_version = ""
        with psycopg.connect(plain) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg_version = str(row[0]) if row else ""
        find_ms = sum(ms for *_, ms in plans)
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip() or os.cpu_count()
        report += [
            f"# Deadline sweep at {args.tickets:,} open and {closed:,} finished tickets (PostgreSQL)",
            "",
            f"- Date: {now.strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Machine: nproc {nproc}, "
            f"{cpu_model()}, Python {platform.python_version()}, PostgreSQL {pg_version}",
            f"- Command: `.venv/bin/python bench/sweep_1m.py --tickets {args.tickets} --closed-factor "
            f"{args.closed_factor:g}` (from /work/main)",
            f"- Data: {args.tickets:,} open tickets, {closed:,} finished tickets (notice_level {NOTICES_DONE}, every "
            f"threshold past), {2 * args.tickets + 200:,} events, built with generate_series "
            f"in {fill_s:.1f} s (incl. migration and VACUUM ANALYZE)",
            "",
            "## Results",
            "",
            "| what | time |",
            "|---|---|",
            *[f"| {label} (EXPLAIN ANALYZE execution) | {ms:.2f} ms |" for label, _, _, ms in plans],
            f"| all find queries together | {find_ms:.2f} ms |",
            *[f"| size of `{relname}` | {tuples:,} rows, {size / 1e6:.1f} MB |" for relname, tuples, size in sizes],
            f"| first sweep, committed: finds and raises {sum(sent.values())} notices, opens "
            f"{sum(cases.values())} cases | {first_s * 1000:.0f} ms |",
            f"| second sweep (nothing due: the steady state every 30 s) | {second_s * 1000:.1f} ms |",
            "",
            f"Notices of the first sweep: {sent}; cases: {cases}.",
            "",
            "Finding the due rows stays far under 1 s because each threshold query walks a partial index that holds "
            "only tickets not yet raised to that level, in threshold order, and stops at `now`; finished tickets "
            f"(notice_level {NOTICES_DONE}) are not in those indexes at all, so the history does not slow the sweep "
            "down however long it grows (the index sizes above); the accountability "
            "rules read only the events after their cursor. The first sweep's time is dominated by writing the "
            "notices (one event row per ticket) — a backlog a running worker never has.",
            "",
            "## Plans",
            "",
        ]
        for label, sql, plan, _ in plans:
            report += [f"### {label}", "", "```sql", sql, "```", "", "```", plan, "```", ""]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(report), encoding="utf-8")
        print(f"wrote {args.out}")
    finally:
        if not args.keep:
            with psycopg.connect(plain, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
