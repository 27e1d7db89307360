"""The work per ticket stays small: the SQL statements one intake costs are counted, and may not grow unnoticed.

The ceilings are what the code needs today (2026-12-03: sync intake 11 statements on SQLite, 7 on PostgreSQL, down
from 13 / 11: the ticket number from the process's reserved block, the user read once, the answer in one statement;
then, with the group commit, 12 / 9 for a request alone — the batch path reserves the ticket and event ids with a
statement each, and the token is checked in a session of its own — but 2.0 / 0.9 per request in a batch of 10 plus
the token's check;
accept 2 / 1; processing 2.2 / 1.1 per message in a batch of 10, down from 7.6 / 7.4: the batch is one transaction
whose ticket numbers, ticket ids and event ids are reserved with one statement each, its citizens looked up with one
SELECT and recorded with one INSERT, its tickets, events and co-units written with one multi-row INSERT each and its
messages marked done with one UPDATE); lower them when an intake gets cheaper.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from hotline import inbound
from hotline.db import transaction
from hotline.intake import IntakeCitizen, IntakeRequest, NewTicket
from hotline.intake_batch import Answer
from hotline.services import Services
from tests.conftest import City, actor

#: statements of the agents' synchronous POST /api/intake alone, a batch of one (auth, message, ticket ids, event ids,
#: citizen, ticket, event, message done, the answer read in one statement; on SQLite also the number reserved in the
#: batch's transaction and a BEGIN for each of the two sessions: the token's and the batch's)
SYNC_INTAKE_CEILING = {"sqlite": 12, "postgresql": 9}
#: statements per request of a batch of 10 synchronous intakes (the group commit, hotline.intake_batch): its share of
#: the batch's one INSERT of the messages, ticket and event ids, citizens (one SELECT, one INSERT), tickets, events,
#: done marks and the answers' one SELECT (on SQLite also the BEGIN and the numbers' upsert); the request's own
#: token check (one SELECT, on SQLite with its BEGIN) comes on top
SYNC_BATCH_CEILING = {"sqlite": 2.0, "postgresql": 0.9}
#: statements of accepting one channel message (the one INSERT, plus the transaction's BEGIN/COMMIT on SQLite)
ACCEPT_CEILING = 2
#: statements the worker spends on one stored message: its share of the batch's claim, lock, numbers, ids, citizens,
#: tickets, events, done marks and release (SQLite adds its BEGINs and one SELECT per reserved block of ids)
PROCESS_CEILING = 2.2


@contextmanager
def counted(services: Services) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(services.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(services.engine, "before_cursor_execute", count)


def test_one_synchronous_intake_stays_within_its_statements(client: TestClient, city: City,
                                                            services: Services) -> None:
    body = {"channel": "phone", "text": "建设路有人占道经营，摊位堵住了人行道", "citizen": {"phone": "13800001234"}}
    client.post("/api/intake", json=body, headers=city.headers("agent"))  # warm caches (directory, calendar)
    with counted(services) as statements:
        response = client.post("/api/intake", json={**body, "external_id": "call-2"}, headers=city.headers("agent"))
    assert response.status_code == 201
    assert len(statements) <= SYNC_INTAKE_CEILING[services.engine.dialect.name], statements


def test_a_batch_of_synchronous_intakes_stays_within_its_statements(services: Services, city: City) -> None:
    agent = actor(services, city, "agent")
    services.intake_batcher.run([NewTicket(IntakeRequest(channel="phone", text="路灯坏了"), agent)])  # warm caches
    batch = [NewTicket(IntakeRequest(channel="phone", external_id=f"call-{n}", text=f"建设路第{n}盏路灯坏了",
                                     citizen=IntakeCitizen(phone=f"1380000{n:04d}")), agent) for n in range(10)]
    with counted(services) as statements:
        results = services.intake_batcher.run(batch)
    assert all(isinstance(r, Answer) and r.created for r in results)
    assert len(statements) / len(batch) <= SYNC_BATCH_CEILING[services.engine.dialect.name], statements


def test_accepting_a_channel_message_is_one_insert(services: Services, city: City) -> None:
    message = inbound.Inbound(channel="wechat", external_id="m1", text="路灯坏了", wechat_openid="o1")
    with counted(services) as statements, transaction(services.sessions) as session:
        inbound.accept(session, message)
    assert statements.count("INSERT") == 1 and len(statements) <= ACCEPT_CEILING, statements


def test_processing_a_stored_message_stays_within_its_statements(services: Services, city: City) -> None:
    with transaction(services.sessions) as session:
        for n in range(10):
            inbound.accept(session, inbound.Inbound(channel="wechat", external_id=f"m{n}", text=f"路灯坏了{n}",
                                                    wechat_openid=f"o{n}"))
    with counted(services) as statements:
        report = inbound.process_pending(services.sessions, services.suggester, services.timing)
    assert report.created == 10
    assert len(statements) / 10 <= PROCESS_CEILING, statements
