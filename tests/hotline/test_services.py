"""The services of a long-running process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from hotline import inbound
from hotline.app import create_app
from hotline.db import transaction
from hotline.models import Ticket
from hotline.services import Services, TicketFollower
from hotline.suggester import CitySuggester
from tests.conftest import City

REPO = Path(__file__).resolve().parents[2]

SERVE_ONE_PROCESS = """
import gc, json
from hotline.app import create_served_app
create_served_app()
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}))
"""


def test_a_serving_process_keeps_its_lasting_heap_out_of_full_collections(tmp_path: Path) -> None:
    # hotline serve's factory, in a process of its own (what is frozen is never collected: not in the test process)
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
           "HOTLINE_MODEL_DIR": str(tmp_path / "model")}
    subprocess.run([sys.executable, "-m", "hotline.cli", "migrate"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=120)
    out = subprocess.run([sys.executable, "-c", SERVE_ONE_PROCESS], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    heap = json.loads(out.stdout.strip().splitlines()[-1])
    # the app, its routes and the libraries' objects are frozen; a full collection walks only what came after
    assert heap["frozen"] > 50_000
    assert heap["walked"] < heap["frozen"] / 20


def _wait_until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_tickets_another_process_makes_join_this_process_duplicate_index(services: Services, city: City) -> None:
    here = CitySuggester(services.sessions, services.knowledge_search, None)
    services.suggester = here
    elsewhere = CitySuggester(services.sessions, services.knowledge_search, None)  # the worker's, say
    with TestClient(create_app(services.settings, services)):
        with transaction(services.sessions) as session:
            for i in range(40):
                inbound.accept(session, inbound.Inbound(channel="web", external_id=f"lamp-{i}",
                                                        text=f"建设路{i}号门口的路灯坏了好几天，晚上一片漆黑"))
        report = inbound.process_pending(services.sessions, elsewhere, services.timing, limit=50)
        assert report.created == 40
        with services.sessions() as session:
            made = list(session.scalars(select(Ticket.id)))
        assert _wait_until(lambda: all(ticket_id in here._duplicates for ticket_id in made))
        assert here._duplicates.query("建设路路灯坏了", None)


def test_another_process_tickets_are_indexed_from_their_notices_without_reading_them(services: Services,
                                                                                     city: City) -> None:
    here = CitySuggester(services.sessions, services.knowledge_search, None)
    services.suggester = here
    elsewhere = CitySuggester(services.sessions, services.knowledge_search, None)
    reads: list[str] = []

    def count_ticket_reads(conn, cursor, statement: str, *args) -> None:
        if "tickets.title" in statement and "tickets.text" in statement:
            reads.append(statement)

    event.listen(services.engine, "before_cursor_execute", count_ticket_reads)
    try:
        with TestClient(create_app(services.settings, services)):
            with transaction(services.sessions) as session:
                for i in range(20):
                    inbound.accept(session, inbound.Inbound(channel="web", external_id=f"pipe-{i}",
                                                            text=f"幸福小区{i}栋楼下水管爆裂，水漫到路上了"))
            assert inbound.process_pending(services.sessions, elsewhere, services.timing, limit=50).created == 20
            with services.sessions() as session:
                made = list(session.scalars(select(Ticket.id)))
            assert _wait_until(lambda: all(here.knows(ticket_id) for ticket_id in made))
            time.sleep(0.3)  # the receive events came after the notices: they must not read the tickets either
    finally:
        event.remove(services.engine, "before_cursor_execute", count_ticket_reads)
    assert reads == []
    # indexed as the maker indexed them, term for term and weight for weight
    assert all(here._duplicates.entry(t) == elsewhere._duplicates.entry(t) for t in made)


def test_a_ticket_noticed_and_finished_at_once_ends_up_out_of_the_index(services: Services, city: City) -> None:
    here = CitySuggester(services.sessions, services.knowledge_search, None)
    services.suggester = here
    with TestClient(create_app(services.settings, services)):
        with transaction(services.sessions) as session:
            inbound.accept(session, inbound.Inbound(channel="web", external_id="lamp", text="建设路的路灯坏了"))
        elsewhere = CitySuggester(services.sessions, services.knowledge_search, None)
        inbound.process_pending(services.sessions, elsewhere, services.timing)
        with services.sessions() as session:
            [ticket_id] = session.scalars(select(Ticket.id))
        assert _wait_until(lambda: ticket_id in here._duplicates)  # the worker's notice of the new ticket
        services.bus.publish([{"type": "close", "ticket_id": ticket_id, "to_status": "closed"}])
        assert _wait_until(lambda: ticket_id not in here._duplicates)
        # a receive and the closing in one delivery (a busy bus), a broken notice among them: applied in order
        services.bus.publish([{"type": "receive", "ticket_id": "not a number"},
                              {"type": "receive", "ticket_id": ticket_id},
                              {"type": "close", "ticket_id": ticket_id, "to_status": "closed"},
                              {"type": "receive", "ticket_id": ticket_id + 1000}])  # gone meanwhile: left out
        time.sleep(0.5)
        assert ticket_id not in here._duplicates and ticket_id + 1000 not in here._duplicates


def test_a_worker_follows_the_tickets_other_processes_make_and_close(services: Services, city: City) -> None:
    here = CitySuggester(services.sessions, services.knowledge_search, None)  # a worker's, with no event loop
    services.suggester = here
    elsewhere = CitySuggester(services.sessions, services.knowledge_search, None)  # another worker's
    follower = TicketFollower(services).start()
    try:
        assert _wait_until(lambda: bool(services.bus._subscribers))  # type: ignore[attr-defined]
        with transaction(services.sessions) as session:
            for i in range(5):
                inbound.accept(session, inbound.Inbound(channel="web", external_id=f"noise-{i}",
                                                        text=f"和平路{i}号工地夜间施工噪音太大，影响休息"))
        inbound.process_pending(services.sessions, elsewhere, services.timing)
        with services.sessions() as session:
            made = list(session.scalars(select(Ticket.id)))
        assert _wait_until(lambda: all(here.knows(ticket_id) for ticket_id in made))
        services.bus.publish([{"type": "close", "ticket_id": made[0], "to_status": "closed"}])
        assert _wait_until(lambda: not here.knows(made[0]))  # closed elsewhere: no longer a duplicate candidate
    finally:
        follower.stop()
    assert not follower._thread.is_alive()
