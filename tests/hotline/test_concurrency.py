"""Concurrency on the production database: unique numbers, one ticket per message, one winner per action."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hotline.models import Ticket
from hotline.services import Services
from tests.conftest import City, act, submit


@pytest.fixture
def pg_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("runs on PostgreSQL only (SQLite serialises writers by design)")


def test_200_parallel_submissions_get_200_distinct_numbers(
    pg_only: None, client: TestClient, city: City, services: Services
) -> None:
    def send(i: int) -> str:
        r = client.post("/api/intake", headers=city.headers("agent"),
                        json={"channel": "web", "external_id": f"web-{i}", "text": f"第{i}号诉求：路灯不亮"})
        assert r.status_code == 201, r.text
        return str(r.json()["number"])

    with ThreadPoolExecutor(max_workers=32) as pool:
        numbers = list(pool.map(send, range(200)))
    assert len(set(numbers)) == 200
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 200


def test_50_parallel_deliveries_of_one_message_make_one_ticket(
    pg_only: None, client: TestClient, city: City, services: Services
) -> None:
    body = {"channel": "wechat", "external_id": "wx-msg-42", "text": "小区停水一整天了"}
    barrier = threading.Barrier(50)

    def send(_: int) -> tuple[int, int]:
        barrier.wait()
        r = client.post("/api/intake", headers=city.headers("agent"), json=body)
        return r.status_code, r.json()["id"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(send, range(50)))
    assert [s for s, _ in results].count(201) == 1
    assert {s for s, _ in results} <= {200, 201}
    assert len({i for _, i in results}) == 1


def test_two_agents_dispatching_at_once_one_wins_the_other_gets_409(
    pg_only: None, client: TestClient, city: City, services: Services
) -> None:
    for _ in range(5):
        t = submit(client, city)
        barrier = threading.Barrier(2)

        def dispatch(
            who: str,
            unit: str,
            ticket_id: int = t["id"],
            version: int = t["version"],
            barrier: threading.Barrier = barrier,
        ) -> int:
            barrier.wait()
            return act(client, city, who, ticket_id, "dispatch", unit_id=city.ids[unit], version=version).status_code

        with ThreadPoolExecutor(max_workers=2) as pool:
            codes = sorted(pool.map(dispatch, ["agent", "agent2"], ["unit:cjjd", "unit:cgj"]))
        assert codes == [200, 409]
        detail = client.get(f"/api/tickets/{t['id']}", headers=city.headers("agent")).json()
        assert [e["type"] for e in detail["events"]].count("dispatch") == 1
