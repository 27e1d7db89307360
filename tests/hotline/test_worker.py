"""The deadline sweep: one notice per threshold per ticket, however many workers run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hotline.models import Ticket, TicketEvent
from hotline.services import Services
from hotline.worker import sweep, sweep_once
from tests.conftest import City, act, submit


def dispatched_ticket(client: TestClient, city: City) -> int:
    t = submit(client, city)
    assert act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"]).status_code == 200
    return int(t["id"])


def notices(services: Services, ticket_id: int) -> list[str]:
    with services.sessions() as s:
        return list(s.scalars(select(TicketEvent.type).where(
            TicketEvent.ticket_id == ticket_id,
            TicketEvent.type.in_(["deadline_warning", "overdue", "escalation"])).order_by(TicketEvent.id)))


def test_each_threshold_raises_exactly_one_notice(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched_ticket(client, city)
    with services.sessions() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and t.reply_warn_at and t.reply_due and t.escalate_at
        warn, due, escalate = t.reply_warn_at, t.reply_due, t.escalate_at
    assert warn < due < escalate
    assert sweep_once(services, now=warn - timedelta(seconds=1)) == {}
    assert sweep_once(services, now=warn) == {"deadline_warning": 1}
    assert sweep_once(services, now=warn + timedelta(seconds=5)) == {}
    assert sweep_once(services, now=escalate + timedelta(seconds=1)) == {"overdue": 1, "escalation": 1}
    assert sweep_once(services, now=escalate + timedelta(days=3)) == {}
    assert notices(services, ticket_id) == ["deadline_warning", "overdue", "escalation"]


def test_replied_tickets_are_not_chased(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched_ticket(client, city)
    act(client, city, "cjjd", ticket_id, "sign")
    act(client, city, "cjjd", ticket_id, "reply", note="已办结")
    assert sweep_once(services, now=datetime.now(UTC) + timedelta(days=60)) == {}


def test_sweep_does_not_bump_the_ticket_version(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched_ticket(client, city)
    before = client.get(f"/api/tickets/{ticket_id}", headers=city.headers("agent")).json()["version"]
    sweep_once(services, now=datetime.now(UTC) + timedelta(days=60))
    r = act(client, city, "cjjd", ticket_id, "sign", version=before)
    assert r.status_code == 200


def test_two_workers_at_once_send_each_notice_once(client: TestClient, city: City, services: Services) -> None:
    ids = [dispatched_ticket(client, city) for _ in range(20)]
    later = datetime.now(UTC) + timedelta(days=60)
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []

    def worker() -> None:
        with services.sessions() as session:
            barrier.wait()
            results.append(sweep(session, now=later))
            session.commit()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = sum(r.get("overdue", 0) for r in results)
    assert total == 20
    with services.sessions() as s:
        per_ticket = s.execute(select(TicketEvent.ticket_id, func.count()).where(
            TicketEvent.type == "overdue").group_by(TicketEvent.ticket_id)).all()
    assert sorted(tid for tid, _ in per_ticket) == sorted(ids)
    assert {n for _, n in per_ticket} == {1}


def test_an_approved_extension_rearms_the_overdue_notice(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched_ticket(client, city)
    act(client, city, "cjjd", ticket_id, "sign")
    with services.sessions() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and t.reply_warn_at is not None
        warn = t.reply_warn_at
    sweep_once(services, now=warn)
    act(client, city, "cjjd", ticket_id, "request_extension", note="需联合执法", working_hours=30)
    act(client, city, "supervisor", ticket_id, "decide_extension", approve=True, note="同意")
    with services.sessions() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and t.reply_due is not None
        assert t.notice_level <= 1
