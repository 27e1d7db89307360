"""The service survives what production does to it (issue #14, proof): PostgreSQL restarted, Redis stopped and
restarted under load, API workers and the deadline worker killed with SIGKILL mid-stream.

Every test runs the real processes (``hotline serve``, ``hotline worker``; tests/processes.py) and, where it stops a
server, a throwaway one of its own (tests/infra.py), so no other test is disturbed.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from hotline.db import make_engine
from hotline.migrate import upgrade
from hotline.models import InboundMessage, Ticket, TicketEvent
from tests import infra
from tests.processes import CHANNEL_HEADERS, DeskSocket, Stack, seed_directory, wait_until

pytestmark = [pytest.mark.postgres]
UNAVAILABLE = "数据库暂时不可用，请稍后重试"
counter = itertools.count(1)


def web_message(text: str = "幸福里小区门口的路灯坏了三天，晚上很黑") -> dict[str, str]:
    n = next(counter)
    return {"channel": "web", "external_id": f"survival-{uuid.uuid4().hex[:8]}-{n}", "text": f"{text}（{n}）"}


def count(database_url: str, statement: Any) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(statement) or 0)
    finally:
        engine.dispose()


def tickets_of(database_url: str, external_ids: list[str]) -> int:
    return count(database_url, select(func.count(func.distinct(InboundMessage.ticket_id)))
                 .where(InboundMessage.external_id.in_(external_ids), InboundMessage.state == "done"))


@pytest.fixture
def stack_on_own_postgres(tmp_path: Path) -> Iterator[tuple[Stack, infra.ThrowawayPostgres]]:
    server = infra.throwaway_postgres()
    url = server.database()
    seed_directory(url, tmp_path)
    stack = Stack(url, tmp_path)
    try:
        yield stack, server
    finally:
        stack.close()
        server.stop()


def test_while_postgresql_is_down_requests_fail_fast_with_503_and_the_service_recovers_by_itself(
    stack_on_own_postgres: tuple[Stack, infra.ThrowawayPostgres],
) -> None:
    stack, postgres = stack_on_own_postgres
    stack.serve(workers=1)
    worker = stack.worker()
    agent = stack.login("agent")
    before = web_message()
    assert httpx.post(f"{stack.base}/api/inbound", json=before, headers=CHANNEL_HEADERS, timeout=30).status_code == 202
    wait_until(lambda: tickets_of(stack.database_url, [before["external_id"]]) == 1, 60, "the worker's first ticket")

    postgres.stop("immediate")  # as a crash: every connection cut, no goodbye
    for method, path, body, headers in [
        ("GET", "/api/tickets", None, agent),
        ("POST", "/api/intake", {"channel": "phone", "text": "建设路的井盖丢了，很危险"}, agent),
        ("POST", "/api/inbound", web_message(), CHANNEL_HEADERS),
        ("POST", "/api/auth/login", {"username": "agent", "password": "agent123"}, {}),
    ]:
        started = time.monotonic()
        response = httpx.request(method, f"{stack.base}{path}", json=body, headers=headers, timeout=30)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, (path, response.status_code, response.text)
        assert response.json()["detail"] == UNAVAILABLE and response.json()["message"]
        assert int(response.headers["Retry-After"]) > 0
        assert elapsed < 5, f"{path} took {elapsed:.1f} s to say the database is down"
    time.sleep(0.5)  # the worker meets the outage too (its pass fails and it backs off)
    assert worker.alive()

    postgres.start()
    wait_until(lambda: httpx.get(f"{stack.base}/api/tickets", headers=agent, timeout=10).status_code == 200, 30,
               "the API to answer again without a restart")
    created = httpx.post(f"{stack.base}/api/intake", json={"channel": "phone", "text": "建设路的井盖丢了，很危险"},
                         headers=agent, timeout=30)
    assert created.status_code == 201, created.text
    after = web_message()
    assert httpx.post(f"{stack.base}/api/inbound", json=after, headers=CHANNEL_HEADERS, timeout=30).status_code == 202
    wait_until(lambda: tickets_of(stack.database_url, [after["external_id"]]) == 1, 90,
               "the worker to carry on after the restart")
    assert worker.alive()
    # the worker says it works again at the end of the pass that made the ticket (after its sweep)
    wait_until(lambda: "the worker works again" in worker.output(), 30, "the worker to log its recovery")
    assert "worker pass failed" in worker.output()


def all_event_ids(database_url: str) -> list[int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(TicketEvent.id).order_by(TicketEvent.id)))
    finally:
        engine.dispose()


@pytest.mark.redis
def test_with_redis_stopped_intake_goes_on_and_the_desk_catches_up_on_every_missed_event_once(
    tmp_path: Path,
) -> None:
    url = infra.fresh_postgres_database()
    upgrade(url)
    seed_directory(url, tmp_path)
    redis_server = infra.throwaway_redis()
    stack = Stack(url, tmp_path, redis_url=redis_server.url)
    desk: DeskSocket | None = None
    try:
        stack.serve(workers=2)
        stack.worker()
        agent = stack.login("agent")
        desk = DeskSocket(f"ws://127.0.0.1:{stack.port}/ws", agent["Authorization"].split()[1]).start()

        def intake(n: int) -> list[str]:
            """n tickets by the agents' synchronous path and n by the durable channel path."""
            external: list[str] = []
            for _ in range(n):
                sync = httpx.post(f"{stack.base}/api/intake", headers=agent, timeout=30,
                                  json={"channel": "phone", "text": "建设路的井盖丢了，晚上很危险"})
                assert sync.status_code == 201, sync.text
                body = web_message()
                accepted = httpx.post(f"{stack.base}/api/inbound", json=body, headers=CHANNEL_HEADERS, timeout=30)
                assert accepted.status_code == 202, accepted.text
                external.append(body["external_id"])
            return external

        def caught_up() -> bool:
            return sorted(desk.seen) == all_event_ids(url)

        first = intake(3)
        wait_until(lambda: tickets_of(url, first) == 3 and caught_up(), 60, "the desk to see the first tickets")

        redis_server.stop()  # SIGKILL: every subscription and publisher connection cut
        during = intake(8)
        wait_until(lambda: tickets_of(url, during) == 8, 60, "the worker's tickets while Redis is down")
        missed = set(all_event_ids(url)) - set(desk.seen)
        assert len(missed) >= 16, "the desk should have missed the events published while Redis was down"

        redis_server.start()
        after = intake(3)
        wait_until(lambda: tickets_of(url, after) == 3, 60, "the worker's tickets after the restart")
        wait_until(caught_up, 60, "the desk to catch up on every event it missed")
        assert 4503 in desk.close_codes, "the hub asks its desks to catch up once the bus is back"
        for delivered in desk.per_connection:
            assert len(delivered) == len(set(delivered)), "one connection delivered an event twice"
        assert len(desk.seen) == len(set(desk.seen))
        with make_engine(url).connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Ticket)) == 2 * (3 + 8 + 3)
    finally:
        if desk is not None:
            desk.close()
        stack.close()
        redis_server.stop()


def test_an_api_worker_and_the_worker_killed_mid_stream_lose_and_double_no_acknowledged_request(
    tmp_path: Path,
) -> None:
    url = infra.fresh_postgres_database()
    upgrade(url)
    seed_directory(url, tmp_path)
    stack = Stack(url, tmp_path)
    try:
        server = stack.serve(workers=2)
        worker = stack.worker()
        acknowledged: list[str] = []
        with httpx.Client(base_url=stack.base, headers=CHANNEL_HEADERS, timeout=30) as http:
            for n in range(120):
                body = web_message()
                try:
                    answer = http.post("/api/inbound", json=body)
                except httpx.HTTPError:  # the connection the killed API worker held: not acknowledged, retried
                    answer = http.post("/api/inbound", json=body)
                if answer.status_code in (200, 202):
                    acknowledged.append(body["external_id"])
                if n == 40:
                    victim = server.children()[0]
                    os.kill(victim, signal.SIGKILL)  # one API worker, mid-stream
                if n == 70:
                    worker.kill()  # the deadline worker, mid-batch: its claims stay leased
                    worker = stack.worker()
        assert len(acknowledged) >= 110
        wait_until(lambda: tickets_of(url, acknowledged) == len(acknowledged), 180,
                   "every acknowledged message to become a ticket", interval=0.5)
        with make_engine(url).connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(InboundMessage))
            # one ticket per stored message (a request cut off by the kill may be stored, then recognised on retry)
            assert conn.scalar(select(func.count()).select_from(Ticket)) == stored >= len(acknowledged)
            assert conn.scalar(select(func.count()).select_from(InboundMessage)
                               .where(InboundMessage.state != "done")) == 0
    finally:
        stack.close()


DUE_TICKETS = 3000
FILL_DUE = """
INSERT INTO tickets (number, channel, title, text, kind, urgent, status, category_id, area_id, confidential,
                     lead_unit_id, analysis, received_at, dispatched_at, sign_due, reply_due, reply_warn_at,
                     escalate_at, notice_level, extension_pending, version, updated_at)
SELECT 'DUE' || lpad(i::text, 8, '0'), 'phone', '', '幸福里小区门口的路灯坏了三天', 'help', false,
       (ARRAY['dispatched', 'signed'])[1 + i %% 2],
       (SELECT min(id) FROM categories), (SELECT min(id) FROM areas), false, (SELECT min(id) FROM units), '{}',
       now() - interval '20 days', now() - interval '20 days', now() - interval '19 days',
       now() - interval '2 hours', now() - interval '3 hours', now() - interval '1 hour', 0, false, 1, now()
FROM generate_series(1, %(n)s) AS i
"""
NOTICE_TYPES = ("deadline_warning", "overdue", "escalation")


@pytest.mark.slow
@pytest.mark.redis
def test_a_worker_killed_mid_sweep_leaves_no_notice_half_sent_and_its_successor_sends_each_exactly_once(
    tmp_path: Path,
) -> None:
    import psycopg

    url = infra.fresh_postgres_database()
    upgrade(url)
    seed_directory(url, tmp_path)
    dsn = url.replace("+psycopg", "")
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(dsn) as conn:
        conn.execute(FILL_DUE, {"n": DUE_TICKETS})  # every ticket past its 75 %, its reply deadline, its escalation
    redis_server = infra.throwaway_redis()
    stack = Stack(url, tmp_path, redis_url=redis_server.url)
    desk: DeskSocket | None = None

    def committed() -> dict[str, int]:
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT type, count(*) FROM ticket_events WHERE type = ANY(%s) GROUP BY type",
                                (list(NOTICE_TYPES),)).fetchall()
            raised = conn.execute("SELECT count(*) FROM tickets WHERE notice_level > 0").fetchone()
            cases = conn.execute("SELECT count(*) FROM accountability_cases WHERE rule = 'overdue'").fetchone()
        return {**{t: n for t, n in rows}, "raised": raised[0] if raised else 0, "cases": cases[0] if cases else 0}

    def writing_backend() -> int | None:
        """The worker's backend while its sweep transaction holds uncommitted writes (it has a transaction id)."""
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_xid IS NOT NULL "
                               "AND pid <> pg_backend_pid()", (database,)).fetchone()
        return int(row[0]) if row else None

    try:
        stack.serve(workers=1)
        agent = stack.login("agent")
        desk = DeskSocket(f"ws://127.0.0.1:{stack.port}/ws", agent["Authorization"].split()[1]).start()
        worker = stack.worker()
        backend = wait_until(writing_backend, 120, "the worker's sweep to start writing", interval=0.02)
        time.sleep(1.0)  # deeper into the sweep (all of it takes ~10 s here): tickets raised, events being written
        worker.kill()
        wait_until(lambda: writing_backend() != backend, 30, "PostgreSQL to roll the cut-off sweep back")
        assert committed() == {"raised": 0, "cases": 0}, "the killed sweep left part of its work committed"

        stack.worker()
        expected = {**{t: DUE_TICKETS for t in NOTICE_TYPES}, "raised": DUE_TICKETS, "cases": DUE_TICKETS}
        wait_until(lambda: committed() == expected, 180, "the restarted worker to raise every notice", interval=0.5)
        time.sleep(3)  # a few more sweeps: nothing is raised twice
        assert committed() == expected
        with psycopg.connect(dsn) as conn:
            twice = conn.execute("SELECT ticket_id, type FROM ticket_events WHERE type = ANY(%s) "
                                 "GROUP BY ticket_id, type HAVING count(*) <> 1", (list(NOTICE_TYPES),)).fetchall()
            notice_ids = {r[0] for r in conn.execute(
                "SELECT id FROM ticket_events WHERE type = ANY(%s) OR type = 'accountability'",
                (list(NOTICE_TYPES),))}
        assert twice == []
        assert len(notice_ids) == 4 * DUE_TICKETS
        wait_until(lambda: notice_ids <= set(desk.seen), 120, "the agent's desk to hear every notice")
        for delivered in desk.per_connection:
            assert len(delivered) == len(set(delivered)), "the desk was told of a notice twice"
    finally:
        if desk is not None:
            desk.close()
        stack.close()
        redis_server.stop()
