"""Supervision orders (督办), accountability cases (问责) and the sweep rules that open them exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.models import AccountabilityCase, SupervisionOrder, Ticket, TicketEvent
from hotline.services import Services
from hotline.sweep import sweep, sweep_once
from routing.accountability import closed_unsolved_after_reopen, refused_returns_due
from tests.conftest import City, act, submit
from tests.hotline.sweep_overlap import overlapping_sweeps


def dispatched(client: TestClient, city: City, unit: str = "cjjd") -> int:
    t = submit(client, city)
    r = act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids[f"unit:{unit}"])
    assert r.status_code == 200, r.text
    return int(t["id"])


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def cases(services: Services, **where: Any) -> list[AccountabilityCase]:
    with services.sessions() as s:
        stmt = select(AccountabilityCase).order_by(AccountabilityCase.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(AccountabilityCase, key) == value)
        return list(s.scalars(stmt))


def test_rule_checks_are_plain_functions() -> None:
    assert refused_returns_due([(1, 7), (1, 7), (1, 8), (2, 7), (3, None), (3, None)]) == [(1, 7)]
    assert refused_returns_due([(1, 7), (1, 7), (1, 8)], minimum=3) == []
    assert refused_returns_due([(1, 7), (1, 8)], minimum=1) == [(1, 7), (1, 8)]
    assert closed_unsolved_after_reopen({"solved": False}, reopens_before=1)
    assert not closed_unsolved_after_reopen({"solved": False}, reopens_before=0)
    assert not closed_unsolved_after_reopen({"solved": False}, reopens_before=1, minimum=2)
    assert not closed_unsolved_after_reopen({"solved": None}, reopens_before=1)
    assert not closed_unsolved_after_reopen({"solved": False, "unreachable": True}, reopens_before=1)


def test_supervision_order_has_due_date_response_and_lists(client: TestClient, city: City,
                                                           services: Services) -> None:
    ticket_id = dispatched(client, city)
    r = ok(act(client, city, "supervisor", ticket_id, "supervise", note="督办：请两个工作日内书面答复"))
    data = r["events"][-1]["data"]
    assert data["unit_id"] == city.ids["unit:cjjd"] and data["order_id"]
    due = datetime.fromisoformat(data["due_at"])
    assert due > datetime.now(UTC)
    listed = ok(client.get("/api/supervision", headers=city.headers("supervisor")))
    assert [o["ticket_id"] for o in listed] == [ticket_id] and listed[0]["state"] == "open"
    assert ok(client.get("/api/supervision", headers=city.headers("cjjd")))[0]["id"] == data["order_id"]
    assert ok(client.get("/api/supervision", headers=city.headers("zjj"))) == []
    assert client.get("/api/supervision", headers=city.headers("agent")).status_code == 403
    r = client.get("/api/supervision", params={"unit_id": city.ids["unit:cjjd"]}, headers=city.headers("zjj"))
    assert r.status_code == 403
    # the overdue notice for the order goes out once
    assert sweep_once(services, now=due + timedelta(minutes=1)).get("supervision_overdue") == 1
    assert "supervision_overdue" not in sweep_once(services, now=due + timedelta(minutes=2))
    answer = ok(act(client, city, "cjjd", ticket_id, "respond_supervision", note="已安排执法队员现场处置"))
    assert answer["events"][-1]["data"]["order_ids"] == [data["order_id"]]
    assert ok(client.get("/api/supervision", headers=city.headers("supervisor"))) == []
    responded = ok(client.get("/api/supervision", params={"state": "responded"}, headers=city.headers("cjjd")))
    assert responded[0]["response"] == "已安排执法队员现场处置"
    assert act(client, city, "cjjd", ticket_id, "respond_supervision", note="再答一次").status_code == 409


def test_one_tickets_orders_and_cases_are_listed_for_its_dialog(client: TestClient, city: City) -> None:
    """The supervisor's ticket dialog asks for one ticket's orders and cases, answered and decided ones too."""
    first, second = dispatched(client, city), dispatched(client, city)
    for ticket_id in (first, second):
        ok(act(client, city, "supervisor", ticket_id, "supervise", note="请两个工作日内书面答复"))
    ok(act(client, city, "cjjd", first, "respond_supervision", note="已到场处置"))
    ok(act(client, city, "supervisor", first, "accountability", note="签收后两天无人到场"))
    every = {"state": "all", "ticket_id": first}
    orders = ok(client.get("/api/supervision", params=every, headers=city.headers("supervisor")))
    assert [(o["ticket_id"], o["state"]) for o in orders] == [(first, "responded")]
    listed = ok(client.get("/api/accountability", params=every, headers=city.headers("supervisor")))
    assert [(c["ticket_id"], c["state"]) for c in listed] == [(first, "opened")]
    assert ok(client.get("/api/accountability", params={"state": "all", "ticket_id": second},
                         headers=city.headers("supervisor"))) == []
    # a unit still sees its own orders only, whichever ticket it names
    assert ok(client.get("/api/supervision", params=every, headers=city.headers("zjj"))) == []
    bad = client.get("/api/supervision", params={"ticket_id": 0}, headers=city.headers("supervisor"))
    assert bad.status_code == 422


def test_supervision_needs_a_unit_and_accepts_a_co_unit(client: TestClient, city: City) -> None:
    t = submit(client, city)
    assert act(client, city, "supervisor", t["id"], "supervise", note="督办未派单工单").status_code == 409
    ok(act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"],
           co_unit_ids=[city.ids["unit:cgj"]]))
    r = ok(act(client, city, "supervisor", t["id"], "supervise", note="督办协办单位", unit_id=city.ids["unit:cgj"],
               due_at="2030-01-02T17:30:00+08:00"))
    assert r["events"][-1]["data"]["unit_id"] == city.ids["unit:cgj"]
    assert act(client, city, "supervisor", t["id"], "supervise", note="督办无关单位",
               unit_id=city.ids["unit:zjj"]).status_code == 422
    assert act(client, city, "cjjd", t["id"], "respond_supervision", note="不是督办本单位").status_code == 409
    ok(act(client, city, "cgj", t["id"], "respond_supervision", note="协办单位已配合处置"))


def test_accountability_case_opened_explained_decided(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched(client, city)
    opened = ok(act(client, city, "supervisor", ticket_id, "accountability", note="超期未签收，启动问责"))
    case_id = opened["events"][-1]["data"]["case_ids"][0]
    assert act(client, city, "cjjd", ticket_id, "accountability", note="我们维持", decision="uphold").status_code == 403
    assert act(client, city, "supervisor", ticket_id, "accountability", note="说明", decision="explain"
               ).status_code == 403
    listed = ok(client.get("/api/accountability", headers=city.headers("cjjd")))
    assert [(c["id"], c["state"], c["rule"]) for c in listed] == [(case_id, "opened", "manual")]
    assert ok(client.get("/api/accountability", headers=city.headers("zjj"))) == []
    ok(act(client, city, "cjjd", ticket_id, "accountability", note="签收系统故障，已补签", decision="explain"))
    assert cases(services)[0].state == "explained" and cases(services)[0].explanation == "签收系统故障，已补签"
    second = ok(act(client, city, "supervisor", ticket_id, "accountability", note="另案：答复敷衍"))
    second_id = second["events"][-1]["data"]["case_ids"][0]
    r = act(client, city, "supervisor", ticket_id, "accountability", note="维持", decision="uphold")
    assert r.status_code == 422 and "case_id" in r.json()["message"]
    ok(act(client, city, "supervisor", ticket_id, "accountability", note="理由不成立，维持问责", decision="uphold",
           case_id=case_id))
    ok(act(client, city, "supervisor", ticket_id, "accountability", note="经核实不属实", decision="dismiss",
           case_id=second_id))
    states = {c.id: c.state for c in cases(services)}
    assert states == {case_id: "upheld", second_id: "dismissed"}
    assert ok(client.get("/api/accountability", headers=city.headers("supervisor"))) == []
    upheld = ok(client.get("/api/accountability", params={"state": "upheld"}, headers=city.headers("supervisor")))
    assert upheld[0]["decision_note"] == "理由不成立，维持问责"
    with services.sessions() as s:
        decisions = [e.data["decision"] for e in s.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.type == "accountability").order_by(TicketEvent.id))]
    assert decisions == ["open", "explain", "open", "uphold", "dismiss"]  # the history stays the truth
    assert act(client, city, "supervisor", ticket_id, "accountability", note="再驳回", decision="dismiss"
               ).status_code == 409


def refuse_twice(client: TestClient, city: City, ticket_id: int) -> None:
    for _ in range(2):
        ok(act(client, city, "cjjd", ticket_id, "return", note="不属于本街道职责"))
        ok(act(client, city, "dispatcher", ticket_id, "refuse_return", note="属地管理，由原单位办理"))


def test_overdue_escalation_opens_one_case(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched(client, city)
    with services.sessions() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and t.escalate_at is not None
        escalate = t.escalate_at
    opened: dict[str, int] = {}
    with services.sessions() as s:
        sweep(s, now=escalate + timedelta(seconds=1), cases=opened)
        s.commit()
    assert opened == {"overdue": 1}
    sweep_once(services, now=escalate + timedelta(days=5))
    found = cases(services)
    assert [(c.rule, c.unit_id, c.state) for c in found] == [("overdue", city.ids["unit:cjjd"], "opened")]
    listed = ok(client.get("/api/accountability", params={"rule": "overdue"}, headers=city.headers("cjjd")))
    assert listed[0]["reason"].startswith("超期未办结超过3个工作日")


def test_two_refused_send_backs_open_one_case(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched(client, city)
    ok(act(client, city, "cjjd", ticket_id, "return", note="不属于本街道职责"))
    ok(act(client, city, "dispatcher", ticket_id, "refuse_return", note="属地管理，由原单位办理"))
    later = datetime.now(UTC) + timedelta(seconds=5)
    sweep_once(services, now=later)
    assert cases(services) == []  # one refusal is not yet a pattern
    ok(act(client, city, "cjjd", ticket_id, "return", note="仍不属于本街道职责"))
    ok(act(client, city, "dispatcher", ticket_id, "refuse_return", note="再次驳回"))
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=5))
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=6))
    found = cases(services, rule="refused_returns")
    assert [(c.ticket_id, c.unit_id) for c in found] == [(ticket_id, city.ids["unit:cjjd"])]
    with services.sessions() as s:
        events = s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id,
                                                     TicketEvent.type == "accountability")).all()
    assert len(events) == 1 and events[0].data["rule"] == "refused_returns" and events[0].actor_role == "system"


def unsatisfied_rounds(client: TestClient, city: City, ticket_id: int, rounds: int) -> None:
    """The unit signs and replies, the citizen is unsatisfied; every later round starts with a reopen (重办)."""
    for round_ in range(rounds):
        if round_:
            ok(act(client, city, "supervisor", ticket_id, "reopen", note="回访不满意，退回重办"))
            ok(act(client, city, "agent", ticket_id, "dispatch", unit_id=city.ids["unit:cjjd"]))
        ok(act(client, city, "cjjd", ticket_id, "sign"))
        ok(act(client, city, "cjjd", ticket_id, "reply", note="已处理"))
        ok(act(client, city, "agent", ticket_id, "callback", satisfaction="unsatisfied", solved=False))


def test_closed_unsolved_after_reopen_opens_one_case(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched(client, city)
    unsatisfied_rounds(client, city, ticket_id, 2)
    ok(act(client, city, "supervisor", ticket_id, "close", note="市民诉求超出政策范围，解释后归档"))
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=5))
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=6))
    assert [(c.rule, c.ticket_id) for c in cases(services)] == [("closed_unsolved", ticket_id)]


def test_closed_unsolved_without_reopen_is_not_a_case(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched(client, city)
    ok(act(client, city, "cjjd", ticket_id, "sign"))
    ok(act(client, city, "cjjd", ticket_id, "reply", note="已处理"))
    ok(act(client, city, "agent", ticket_id, "callback", satisfaction="basically_satisfied", solved=False))
    ok(act(client, city, "agent", ticket_id, "close"))
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=5))
    assert cases(services) == []


def test_an_unreachable_citizen_is_not_closed_unsolved(client: TestClient, city: City, services: Services) -> None:
    """Reopened once, then the citizen cannot be reached three times: the supervisor's close is no 'unsolved'."""
    ticket_id = dispatched(client, city)
    unsatisfied_rounds(client, city, ticket_id, 1)
    ok(act(client, city, "supervisor", ticket_id, "reopen", note="回访不满意，退回重办"))
    ok(act(client, city, "agent", ticket_id, "dispatch", unit_id=city.ids["unit:cjjd"]))
    ok(act(client, city, "cjjd", ticket_id, "sign"))
    ok(act(client, city, "cjjd", ticket_id, "reply", note="已再次处理"))
    for _ in range(3):
        ok(act(client, city, "agent", ticket_id, "callback_attempt", note="无人接听"))
    ok(act(client, city, "supervisor", ticket_id, "close", note="三次回访未接通，归档"))
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=5))
    assert cases(services) == []


def test_the_refusal_threshold_is_a_setting(client: TestClient, city: City, services: Services) -> None:
    services.settings = services.settings.model_copy(update={"accountability_refusals": 3})
    ticket_id = dispatched(client, city)
    refuse_twice(client, city, ticket_id)
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=5))
    assert cases(services) == []  # two are not yet a pattern in this city
    ok(act(client, city, "cjjd", ticket_id, "return", note="第三次退单"))
    ok(act(client, city, "dispatcher", ticket_id, "refuse_return", note="第三次驳回"))
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=5))
    assert [c.rule for c in cases(services)] == ["refused_returns"]


def test_the_reopen_threshold_is_a_setting(client: TestClient, city: City, services: Services) -> None:
    services.settings = services.settings.model_copy(update={"accountability_reopens": 2})
    ticket_id = dispatched(client, city)
    unsatisfied_rounds(client, city, ticket_id, 2)
    ok(act(client, city, "supervisor", ticket_id, "close", note="市民诉求超出政策范围，解释后归档"))
    sweep_once(services, now=datetime.now(UTC) + timedelta(seconds=5))
    assert cases(services) == []  # reopened once; this city counts from the second reopen


def test_two_overlapping_sweeps_open_each_case_once(client: TestClient, city: City, services: Services) -> None:
    """Escalations and refused send-backs for 12 tickets; worker B sweeps while A holds its first row locks."""
    ids = [dispatched(client, city) for _ in range(12)]
    for ticket_id in ids[:6]:
        refuse_twice(client, city, ticket_id)
    later = datetime.now(UTC) + timedelta(days=60)
    opened: list[dict[str, int]] = []  # cases each worker opened

    def run(session: Session) -> dict[str, int]:
        cases: dict[str, int] = {}
        sent = sweep(session, now=later, cases=cases)
        opened.append(cases)
        return sent

    a, b = overlapping_sweeps(services, run)
    for kind in ("deadline_warning", "overdue", "escalation"):
        assert a.get(kind, 0) + b.get(kind, 0) == 12, kind
    assert len(opened) == 2
    assert sum(r.get("overdue", 0) for r in opened) == 12
    assert sum(r.get("refused_returns", 0) for r in opened) == 6
    with services.sessions() as s:
        per_key = s.execute(select(AccountabilityCase.rule, AccountabilityCase.ticket_id, func.count())
                            .group_by(AccountabilityCase.rule, AccountabilityCase.ticket_id)).all()
        notices = s.execute(select(TicketEvent.type, TicketEvent.ticket_id, func.count()).where(
            TicketEvent.type.in_(["deadline_warning", "overdue", "escalation"])
        ).group_by(TicketEvent.type, TicketEvent.ticket_id)).all()
        announcements = s.scalar(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.type == "accountability")) or 0
        orders = s.scalar(select(func.count()).select_from(SupervisionOrder)) or 0
    assert {n for *_, n in per_key} == {1} and len(per_key) == 18
    assert {n for *_, n in notices} == {1} and len(notices) == 3 * 12
    assert announcements == 18 and orders == 0
