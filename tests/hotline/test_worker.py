"""The deadline sweep: one notice per threshold per ticket, however many workers run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from hotline import worker, workflow
from hotline.db import attach_publisher
from hotline.models import AccountabilityCase, Ticket, TicketEvent
from hotline.services import Services
from hotline.settings import Settings
from hotline.sweep import THRESHOLDS, sweep, sweep_once
from hotline.timing import Timing
from tests.conftest import City, act, actor, submit
from tests.hotline.sweep_overlap import overlapping_sweeps


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


def test_two_overlapping_workers_send_each_notice_once(client: TestClient, city: City, services: Services) -> None:
    """Worker B sweeps while A holds the row locks of its first UPDATE … RETURNING; B must wait, then skip them."""
    ids = [dispatched_ticket(client, city) for _ in range(20)]
    later = datetime.now(UTC) + timedelta(days=60)
    a, b = overlapping_sweeps(services, lambda session: sweep(session, now=later))
    for kind in ("deadline_warning", "overdue", "escalation"):
        assert a.get(kind, 0) + b.get(kind, 0) == 20, kind
        with services.sessions() as s:
            per_ticket = s.execute(select(TicketEvent.ticket_id, func.count()).where(
                TicketEvent.type == kind).group_by(TicketEvent.ticket_id)).all()
        assert sorted(tid for tid, _ in per_ticket) == sorted(ids), kind
        assert {n for _, n in per_ticket} == {1}, kind


def test_an_approved_extension_rearms_the_overdue_notice(client: TestClient, city: City, services: Services) -> None:
    ticket_id = dispatched_ticket(client, city)
    act(client, city, "cjjd", ticket_id, "sign")
    old_due = ticket(services, ticket_id).reply_due
    assert sweep_once(services, now=ticket(services, ticket_id).reply_warn_at) == {"deadline_warning": 1}
    act(client, city, "cjjd", ticket_id, "request_extension", note="需联合执法", working_hours=30)
    r = act(client, city, "supervisor", ticket_id, "decide_extension", approve=True, note="同意")
    assert r.status_code == 200, r.text
    new_due = ticket(services, ticket_id).reply_due
    assert new_due > old_due
    assert "overdue" not in sweep_once(services, now=old_due + timedelta(seconds=1))
    assert sweep_once(services, now=new_due + timedelta(seconds=1)).get("overdue") == 1
    assert "overdue" not in sweep_once(services, now=new_due + timedelta(hours=1))
    assert notices(services, ticket_id).count("overdue") == 1


def ticket(services: Services, ticket_id: int) -> Ticket:
    with services.sessions() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None
        return t


def perform(services: Services, city: City, who: str, ticket_id: int, action: str, now: datetime,
            **body: Any) -> None:
    with services.sessions() as s:
        workflow.perform(s, ticket_id, action, actor(services, city, who), workflow.parse_input(action, body),
                         services.timing, now=now)
        s.commit()


def cases_of(services: Services, ticket_id: int) -> list[str]:
    with services.sessions() as s:
        return list(s.scalars(select(AccountabilityCase.rule).where(AccountabilityCase.ticket_id == ticket_id)))


def test_a_reopened_ticket_is_not_chased_until_it_is_dispatched_again(
    client: TestClient, city: City, services: Services
) -> None:
    """The unit replied on time; the reopen must not make the old round's deadlines fire against it."""
    ticket_id = dispatched_ticket(client, city)
    act(client, city, "cjjd", ticket_id, "sign")
    assert act(client, city, "cjjd", ticket_id, "reply", note="已处理").json()["events"][-1]["data"]["on_time"]
    act(client, city, "agent", ticket_id, "callback", satisfaction="unsatisfied", solved=False)
    first = ticket(services, ticket_id)
    assert first.escalate_at is not None
    later = first.escalate_at + timedelta(days=1)  # the citizen complains long after the old deadlines
    perform(services, city, "supervisor", ticket_id, "reopen", later, note="回访不满意，重办")
    reopened = ticket(services, ticket_id)
    assert reopened.status == "reopened" and reopened.reply_due is None and reopened.escalate_at is None
    assert sweep_once(services, now=later + timedelta(hours=1)) == {}
    assert sweep_once(services, now=later + timedelta(days=30)) == {}
    assert notices(services, ticket_id) == [] and cases_of(services, ticket_id) == []

    redispatch = later + timedelta(days=30, hours=1)
    perform(services, city, "agent", ticket_id, "dispatch", redispatch, unit_id=city.ids["unit:cjjd"])
    fresh = ticket(services, ticket_id)
    assert fresh.reply_due is not None and fresh.reply_warn_at is not None and fresh.escalate_at is not None
    assert redispatch < fresh.reply_warn_at < fresh.reply_due < fresh.escalate_at and fresh.notice_level == 0
    assert sweep_once(services, now=fresh.reply_warn_at) == {"deadline_warning": 1}
    assert sweep_once(services, now=fresh.escalate_at) == {"overdue": 1, "escalation": 1}
    assert notices(services, ticket_id) == ["deadline_warning", "overdue", "escalation"]


def test_leaving_the_deadline_states_takes_the_ticket_out_of_the_sweep(
    client: TestClient, city: City, services: Services
) -> None:
    """Replied, called back, closed, answered, transferred, merged, waiting for the citizen: all at NOTICES_DONE,
    which is in none of the partial sweep indexes (notice_level < 1, 2, 3)."""
    done = workflow.NOTICES_DONE
    assert done > max(level for level, _, _ in THRESHOLDS)
    replied = dispatched_ticket(client, city)
    act(client, city, "cjjd", replied, "sign")
    act(client, city, "cjjd", replied, "reply", note="已处理")
    assert ticket(services, replied).notice_level == done
    act(client, city, "agent", replied, "callback", satisfaction="satisfied", solved=True)
    assert ticket(services, replied).notice_level == done
    act(client, city, "agent", replied, "close")
    answered = submit(client, city, "请问公积金怎么提取？")["id"]
    act(client, city, "agent", answered, "answer", note="携带身份证到公积金中心办理")
    transferred = submit(client, city, "建设路闻到很浓的煤气味")["id"]
    act(client, city, "agent", transferred, "transfer", line="119")
    returned = dispatched_ticket(client, city)
    act(client, city, "cjjd", returned, "return", note="不属于本街道职责")
    assert ticket(services, returned).notice_level == done  # the unit's clock stands still while the centre decides
    parent = submit(client, city)["id"]
    assert act(client, city, "agent", returned, "merge", parent_id=parent).json()["status"] == "merged"
    paused = dispatched_ticket(client, city)
    act(client, city, "cjjd", paused, "request_info", note="请补充门牌号")
    for ticket_id in (replied, answered, transferred, returned, paused):
        assert ticket(services, ticket_id).notice_level == done, ticket_id
    control = dispatched_ticket(client, city)
    late = datetime.now(UTC) + timedelta(days=60)
    assert sweep_once(services, now=late) == {"deadline_warning": 1, "overdue": 1, "escalation": 1}
    assert len(notices(services, control)) == 3
    # re-entering arms again: the citizen's answer resumes the paused ticket from what it had (nothing sent)
    act(client, city, "agent", paused, "provide_info", note="建设路18号")
    assert ticket(services, paused).notice_level == 0


def test_a_paused_ticket_resumes_with_the_notices_it_already_had(
    client: TestClient, city: City, services: Services
) -> None:
    """Overdue notice sent, then 待补充: after the citizen answers, the escalation is still due once, the overdue
    notice is not repeated."""
    ticket_id = dispatched_ticket(client, city)
    act(client, city, "cjjd", ticket_id, "sign")
    t = ticket(services, ticket_id)
    assert t.reply_due is not None
    overdue_at = t.reply_due + timedelta(minutes=1)
    assert sweep_once(services, now=overdue_at) == {"deadline_warning": 1, "overdue": 1}
    perform(services, city, "cjjd", ticket_id, "request_info", overdue_at + timedelta(minutes=1), note="请补充照片")
    assert ticket(services, ticket_id).notice_level == workflow.NOTICES_DONE
    resumed_at = overdue_at + timedelta(minutes=2)
    perform(services, city, "agent", ticket_id, "provide_info", resumed_at, note="市民已补充照片")
    resumed = ticket(services, ticket_id)
    assert resumed.status == "signed" and resumed.notice_level == 2 and resumed.escalate_at is not None
    assert sweep_once(services, now=resumed_at + timedelta(seconds=1)) == {}
    assert sweep_once(services, now=resumed.escalate_at) == {"escalation": 1}
    assert notices(services, ticket_id) == ["deadline_warning", "overdue", "escalation"]


def test_sweep_events_carry_the_co_units(client: TestClient, city: City, services: Services) -> None:
    """Co-units hear the sweep's notices live: the queued message names them."""
    t = submit(client, city)
    cgj = city.ids["unit:cgj"]
    act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"], co_unit_ids=[cgj])
    act(client, city, "supervisor", t["id"], "supervise", note="督办协办单位", unit_id=cgj)
    sent: list[dict[str, Any]] = []
    attach_publisher(services.sessions, sent.extend)
    sweep_once(services, now=datetime.now(UTC) + timedelta(days=60))
    kinds = {m["type"] for m in sent}
    assert {"deadline_warning", "overdue", "escalation", "accountability", "supervision_overdue"} <= kinds
    assert all(m["co_unit_ids"] == [cgj] for m in sent), [(m["type"], m["co_unit_ids"]) for m in sent]


def test_the_escalation_threshold_is_a_setting(client: TestClient, city: City, services: Services,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_ESCALATE_AFTER_DAYS", "5")
    assert Settings(demo=True).escalate_after_days == 5
    services.timing = Timing.from_database(services.sessions, services.settings.city_timezone)
    services.settings = services.settings.model_copy(update={"escalate_after_days": 5})
    assert services.timing.escalate_after_days == 5
    ticket_id = dispatched_ticket(client, city)
    t = ticket(services, ticket_id)
    assert t.reply_due is not None and t.escalate_at is not None
    assert t.escalate_at == services.timing.calendar.add_working_days(t.reply_due, 5)
    three_days = services.timing.calendar.add_working_days(t.reply_due, 3)
    assert sweep_once(services, now=three_days) == {"deadline_warning": 1, "overdue": 1}
    assert sweep_once(services, now=t.escalate_at) == {"escalation": 1}
    with services.sessions() as s:
        reason = s.scalars(select(AccountabilityCase.reason).where(AccountabilityCase.ticket_id == ticket_id)).one()
    assert reason.startswith("超期未办结超过5个工作日")
    monkeypatch.setenv("HOTLINE_ESCALATE_AFTER_DAYS", "0")
    with pytest.raises(ValidationError):
        Settings(demo=True)


class Stop(BaseException):
    """Ends run_forever's loop in the test (it catches Exception, not BaseException)."""


def test_the_worker_survives_database_errors_with_bounded_backoff(services: Services,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[BaseException | None] = [OperationalError("SELECT 1", {}, Exception("server closed"))] * 6
    outcomes += [None, OperationalError("SELECT 1", {}, Exception("deadlock")), None]
    swept: list[int] = []

    def flaky_sweep(_services: Services, now: datetime | None = None) -> dict[str, int]:
        outcome = outcomes[len(swept)]
        swept.append(1)
        if outcome is not None:
            raise outcome
        return {}

    waits: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds
        if len(swept) == len(outcomes):
            raise Stop

    monkeypatch.setattr(worker, "sweep_once", flaky_sweep)
    settings = services.settings.model_copy(update={"sweep_interval_seconds": 30.0})
    with pytest.raises(Stop):
        worker.run_forever(settings, sleep=sleep, build=lambda *_a, **_k: services, clock=lambda: clock[0])
    assert len(swept) == len(outcomes)  # it kept sweeping after each failure
    backoffs = [w for w in waits if w != worker.IDLE_POLL_SECONDS]
    assert backoffs == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0, 30.0]  # doubling, bounded; a success resets it
    idle = waits[6:waits.index(30.0, 6)]  # after the success: polling for messages until the next sweep is due
    assert idle and set(idle) == {worker.IDLE_POLL_SECONDS} and 29.5 <= sum(idle) <= 30.5
    outcomes.append(outcomes[0])
    with pytest.raises(OperationalError):  # --once still fails loudly
        worker.run_forever(settings, once=True, sleep=sleep, build=lambda *_a, **_k: services, clock=lambda: clock[0])


def test_a_send_back_waiting_for_the_centre_is_never_overdue_against_the_unit(
    client: TestClient, city: City, services: Services
) -> None:
    """退单待处理 is the centre's wait: no reminder, no overdue, no 问责 case against the unit, however long it takes;
    a refusal gives the unit back its deadlines moved on by the wait, and the sweep chases from there."""
    ticket_id = dispatched_ticket(client, city)
    dispatched = ticket(services, ticket_id)
    assert dispatched.reply_due is not None and dispatched.escalate_at is not None
    returned_at = dispatched.dispatched_at + timedelta(minutes=1)  # type: ignore[operator]
    perform(services, city, "cjjd", ticket_id, "return", returned_at, note="不属于本街道职责")
    decided_at = dispatched.escalate_at + timedelta(days=10)
    assert sweep_once(services, now=decided_at) == {}
    assert notices(services, ticket_id) == [] and cases_of(services, ticket_id) == []
    perform(services, city, "dispatcher", ticket_id, "refuse_return", decided_at, note="派单目录明确由属地街道主办")
    resumed = ticket(services, ticket_id)
    assert resumed.status == "dispatched" and resumed.paused_at is None
    assert resumed.reply_due is not None and resumed.reply_due > decided_at
    timing = services.timing
    assert resumed.reply_due == timing.shift_for_pause(dispatched.reply_due, returned_at, decided_at, clock=False)
    assert sweep_once(services, now=decided_at + timedelta(seconds=1)) == {}
    assert sweep_once(services, now=resumed.reply_due) == {"deadline_warning": 1, "overdue": 1}
