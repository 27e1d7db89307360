"""The one intake point: idempotent per (channel, external_id), validated, nothing half-written."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy import text as sql

from hotline import auth, inbound, intake
from hotline.db import transaction
from hotline.intake import IntakeRequest
from hotline.models import Citizen, InboundMessage, Ticket, TicketEvent, User
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


def test_a_synchronous_intake_does_not_hold_the_days_number_row_until_it_commits(
    services: Services, city: City
) -> None:
    """Drawn in the request's transaction, the number kept the day's sequence row locked through the analysis,
    the ticket, its event and auto-dispatch: every concurrent synchronous intake waited for the one before it."""
    if services.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time anyway: the number is drawn in the request's transaction")
    assert services.numbers is not None
    request = IntakeRequest(channel="phone", external_id="call-1", text="建设路有人占道经营，摊位堵住了人行道")
    now = datetime.now(UTC)
    with services.sessions() as open_intake:
        agent = auth.actor_for(open_intake.get(User, city.ids["user:agent"]))
        ticket, created = intake.submit(open_intake, request, agent, suggester=services.suggester,
                                        timing=services.timing, numbers=services.numbers, now=now)
        assert created
        with services.sessions() as other:  # another process draws while the first intake is still open
            other.execute(sql("SET LOCAL lock_timeout = '2s'"))
            block = intake.reserve_numbers(other, 1, now, services.timing.zone)
            other.commit()
        open_intake.commit()
    assert block.first > int(ticket.number[-6:])


def test_number_pools_of_several_processes_never_hand_out_a_number_twice(services: Services, city: City) -> None:
    if services.engine.dialect.name == "sqlite":
        pytest.skip("no pool on SQLite (see the test above)")
    now, zone = datetime.now(UTC), services.timing.zone
    pools = [intake.NumberPool(services.sessions, size=5) for _ in range(2)]  # two API processes

    def draw(n: int) -> list[int]:
        pool = pools[n % 2]
        drawn = []
        for _ in range(12):
            block = pool.take(now, zone)
            assert block is not None and block.first == block.last
            drawn.append(block.first)
        return drawn

    with ThreadPoolExecutor(max_workers=6) as executor:
        numbers = [n for drawn in executor.map(draw, range(6)) for n in drawn]
    with transaction(services.sessions) as session:  # the worker's batches draw from the same sequence
        numbers += [int(intake.next_number(session, now, zone)[-6:])]
    assert len(numbers) == len(set(numbers)) == 73
    for pool in pools:  # their unused tails are not given back: the worker drew a number after them
        pool.close()
    with transaction(services.sessions) as session:
        assert int(intake.next_number(session, now, zone)[-6:]) > max(numbers)


def test_the_number_pool_gives_back_what_it_did_not_hand_out(services: Services, city: City) -> None:
    now, zone = datetime.now(UTC), services.timing.zone
    pool = intake.NumberPool(services.sessions, size=10)
    if services.engine.dialect.name == "sqlite":
        assert pool.take(now, zone) is None  # drawn in the request's transaction there
        return
    first = pool.take(now, zone)
    assert first is not None and pool.take(now, zone) is not None
    pool.close()
    with transaction(services.sessions) as session:
        assert int(intake.next_number(session, now, zone)[-6:]) == first.first + 2


def test_a_batch_takes_its_numbers_from_the_pool_across_the_end_of_a_block(services: Services, city: City) -> None:
    now, zone = datetime.now(UTC), services.timing.zone
    pool = intake.NumberPool(services.sessions, size=5)
    if services.engine.dialect.name == "sqlite":
        assert pool.take_many(now, zone, 3) is None  # the batch reserves them in its own transaction there
        return
    first = pool.take(now, zone)
    assert first is not None
    numbers = pool.take_many(now, zone, 7)  # the first block's 4 left, then 3 of a new one
    assert numbers is not None
    with transaction(services.sessions) as session:
        drawn = [int(numbers.take(session, now, zone)[-6:]) for _ in range(7)]
    assert drawn == list(range(first.first + 1, first.first + 8))
    after = pool.take(now, zone)
    assert after is not None and after.first == first.first + 8
