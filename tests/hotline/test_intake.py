"""The one intake point: idempotent per (channel, external_id), validated, nothing half-written."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hotline import inbound
from hotline.db import transaction
from hotline.models import Citizen, InboundMessage, Ticket, TicketEvent
from hotline.services import Services
from tests.conftest import City, submit


def count(services: Services, model: type) -> int:
    with services.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_submission_creates_a_ticket_with_its_first_event(client: TestClient, city: City, services: Services) -> None:
    r = client.post("/api/intake", headers=city.headers("agent"), json={
        "channel": "phone", "text": "小区门口的路灯坏了一个月了", "citizen": {"name": "张先生", "phone": "13800001234"},
    })
    assert r.status_code == 201
    t = r.json()
    assert t["status"] == "received" and t["citizen"]["phone"] == "13800001234"
    assert count(services, TicketEvent) == 1


def test_same_external_id_returns_the_same_ticket(client: TestClient, city: City, services: Services) -> None:
    body = {"channel": "wechat", "external_id": "msg-1", "text": "垃圾没人清运"}
    first = client.post("/api/intake", headers=city.headers("agent"), json=body)
    again = client.post("/api/intake", headers=city.headers("agent"), json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert count(services, Ticket) == 1 and count(services, InboundMessage) == 1


def test_channel_key_may_submit_for_its_own_channel_only(client: TestClient, city: City) -> None:
    key = {"Authorization": "Bearer demo-wechat-key"}
    assert client.post("/api/intake", headers=key, json={"channel": "wechat", "text": "路灯不亮"}).status_code == 201
    r = client.post("/api/intake", headers=key, json={"channel": "phone", "text": "路灯不亮"})
    assert r.status_code == 422 and "channel" in r.json()["message"]
    assert client.get("/api/tickets", headers=key).status_code == 403


def test_returning_caller_is_recognised_by_phone(client: TestClient, city: City, services: Services) -> None:
    for text in ("第一次来电", "第二次来电"):
        client.post("/api/intake", headers=city.headers("agent"),
                    json={"channel": "phone", "text": text, "citizen": {"phone": "138-0000-1234"}})
    assert count(services, Citizen) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "phone"}, "text"),
        ({"channel": "phone", "text": "   "}, "text"),
        ({"channel": "pigeon", "text": "x"}, "channel"),
        ({"channel": "phone", "text": "x", "citizen": {"phone": "call me maybe"}}, "citizen.phone"),
        ({"channel": "phone", "text": "x", "extra": 1}, "extra"),
        ({"channel": "phone", "text": 42}, "text"),
        ({"channel": "phone", "text": "x", "received_at": "2026-11-22T09:00:00"}, "received_at"),
        ({"channel": "phone", "text": "x", "external_id": "x" * 200}, "external_id"),
    ],
)
def test_bad_fields_are_422_naming_the_field(
    client: TestClient, city: City, services: Services, body: dict, field: str
) -> None:
    r = client.post("/api/intake", headers=city.headers("agent"), json=body)
    assert r.status_code == 422
    assert field in r.json()["message"]
    assert count(services, Ticket) == 0 and count(services, InboundMessage) == 0


def test_text_over_the_limit_is_422_with_the_limit(client: TestClient, city: City, services: Services) -> None:
    r = client.post("/api/intake", headers=city.headers("agent"), json={"channel": "phone", "text": "字" * 10_001})
    assert r.status_code == 422 and r.json()["limit"] == 10_000
    assert count(services, Ticket) == 0


def test_malformed_json_is_422(client: TestClient, city: City) -> None:
    r = client.post("/api/intake", headers={**city.headers("agent"), "Content-Type": "application/json"},
                    content=b'{"channel": "phone", "text": ')
    assert r.status_code == 422


def test_body_over_one_mebibyte_is_413(client: TestClient, city: City) -> None:
    r = client.post("/api/intake", headers={**city.headers("agent"), "Content-Type": "application/json"},
                    content=b'{"channel":"phone","text":"' + b"a" * (1024 * 1024) + b'"}')
    assert r.status_code == 413


def test_units_may_not_submit_tickets(client: TestClient, city: City) -> None:
    r = client.post("/api/intake", headers=city.headers("cjjd"), json={"channel": "phone", "text": "x"})
    assert r.status_code == 403


def test_ticket_numbers_are_date_plus_daily_sequence(client: TestClient, city: City) -> None:
    numbers = [submit(client, city, f"第{i}件")["number"] for i in range(3)]
    assert len(set(numbers)) == 3
    assert [int(n[8:]) for n in numbers] == [1, 2, 3]


def test_parallel_deliveries_of_one_message_make_one_ticket(
    client: TestClient, city: City, services: Services
) -> None:
    body = {"channel": "forum", "external_id": "post-77", "text": "小区电梯经常停运"}

    def send(_: int) -> tuple[int, int]:
        r = client.post("/api/intake", headers=city.headers("agent"), json=body)
        return r.status_code, r.json()["id"]

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(send, range(50)))
    assert {status for status, _ in results} <= {200, 201}
    assert sorted(status for status, _ in results).count(201) == 1
    assert len({ticket_id for _, ticket_id in results}) == 1
    assert count(services, Ticket) == 1


def test_the_auto_title_is_the_first_clause_or_whole_words(client: TestClient, city: City) -> None:
    """Without a title the ticket's is made from the text: never its first 30 characters cut mid-word."""
    clause = submit(client, city, "我住在金桂园小区3栋2单元，楼下路灯已经坏了一个多星期了")
    assert clause["title"] == "我住在金桂园小区3栋2单元"
    long = "金桂园小区三栋二单元楼下的路灯坏了一个多星期晚上黑漆漆的小朋友走路摔倒好几次了希望尽快修好"
    assert long[:30].endswith("小朋")  # the first 30 characters would cut 小朋友
    words = submit(client, city, long)
    assert words["title"] == "金桂园小区三栋二单元楼下的路灯坏了一个多星期晚上黑漆漆的"


def test_a_message_already_stored_for_the_worker_is_a_conflict_not_a_second_ticket(
    client: TestClient, city: City, services: Services
) -> None:
    with transaction(services.sessions) as session:
        inbound.accept(session, inbound.Inbound(channel="phone", external_id="call-9", text="小区电梯经常停运"))
    r = client.post("/api/intake", headers=city.headers("agent"),
                    json={"channel": "phone", "external_id": "call-9", "text": "小区电梯经常停运"})
    assert r.status_code == 409 and "正在生成工单" in r.text
    assert count(services, Ticket) == 0
