"""The desk endpoints after the fixes: the screen-pop for the whole front desk (numbers masked for dispatchers),
stopped countdowns for answered tickets, and 督办/问责 flags per unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from hotline.models import Ticket
from hotline.services import Services
from tests.conftest import City, act, submit


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def dispatch(client: TestClient, city: City, ticket_id: int, unit: str, co: tuple[str, ...] = ()) -> None:
    ok(act(client, city, "dispatcher", ticket_id, "dispatch", unit_id=city.ids[f"unit:{unit}"],
           co_unit_ids=[city.ids[f"unit:{u}"] for u in co]))


def queue(client: TestClient, city: City, who: str, view: str = "open") -> dict[int, dict[str, Any]]:
    data = ok(client.get("/api/desk/unit-queue", params={"view": view}, headers=city.headers(who)))
    return {t["id"]: t["deadline"] for t in data["items"]}


def deadline(client: TestClient, city: City, who: str, ticket_id: int) -> dict[str, Any]:
    data = ok(client.get("/api/desk/deadlines", params={"ids": str(ticket_id)}, headers=city.headers(who)))
    info: dict[str, Any] = data["tickets"][str(ticket_id)]
    return info


# --- screen-pop -------------------------------------------------------------------------------------------------


def test_screen_pop_for_agents_dispatchers_and_supervisors(client: TestClient, city: City) -> None:
    """The agent page admits all three; each sees the numbers as ``hotline.views`` shows them to that role."""
    first = submit(client, city, citizen={"phone": "138-0000-1234", "name": "王先生"})
    submit(client, city, text="另一个人的诉求", citizen={"phone": "13900009999"})
    for who, shown in (("agent", "13800001234"), ("supervisor", "13800001234"), ("dispatcher", "138****1234")):
        data = ok(client.get("/api/desk/citizens", params={"phone": "13800001234"}, headers=city.headers(who)))
        assert data["phone"] == shown, who
        assert [(c["name"], c["phone"]) for c in data["citizens"]] == [("王先生", shown)], who
        assert [t["id"] for t in data["tickets"]] == [first["id"]], who
        assert [t["citizen"]["phone"] for t in data["tickets"]] == [shown], who
    for who in ("cgj", "admin"):  # units never; admins do not take calls
        response = client.get("/api/desk/citizens", params={"phone": "13800001234"}, headers=city.headers(who))
        assert response.status_code == 403, who
    bad = client.get("/api/desk/citizens", params={"phone": "1380000abcd"}, headers=city.headers("dispatcher"))
    assert bad.status_code == 422


# --- stopped countdowns -----------------------------------------------------------------------------------------


def test_an_answered_ticket_stops_its_clock_and_says_whether_it_was_on_time(
    client: TestClient, city: City, services: Services
) -> None:
    in_time = submit(client, city)
    late = submit(client, city, text="人民广场周边共享单车乱停放")
    running = submit(client, city, text="中山路人行道被摊贩占用")
    for t in (in_time, late, running):
        dispatch(client, city, t["id"], "cgj")
        ok(act(client, city, "cgj", t["id"], "sign"))
    now = datetime.now(UTC)
    with services.sessions() as s:  # urgent = clock time, so the lateness does not depend on office hours
        s.execute(update(Ticket).where(Ticket.id == late["id"]).values(
            urgent=True, dispatched_at=now - timedelta(hours=30), reply_due=now - timedelta(hours=2)))
        s.commit()
    ok(act(client, city, "cgj", in_time["id"], "reply", note="已到场清理占道摊位"))
    ok(act(client, city, "cgj", late["id"], "reply", note="已组织清理共享单车"))

    replied = queue(client, city, "cgj", view="replied")
    assert set(replied) == {in_time["id"], late["id"]}
    good, bad = replied[in_time["id"]], replied[late["id"]]
    for info in (good, bad):
        assert info["stopped"] is True and info["done_at"]
        assert info["reply_left_s"] is None and info["sign_left_s"] is None and info["light"] is None
    assert good["on_time"] is True and good["late_s"] == 0
    assert bad["on_time"] is False and 2 * 3600 - 60 < bad["late_s"] < 2 * 3600 + 60
    assert deadline(client, city, "supervisor", late["id"]) == bad  # the same from /api/desk/deadlines

    still = queue(client, city, "cgj")[running["id"]]
    assert still["stopped"] is False and still["reply_left_s"] > 0 and still["light"] in ("green", "yellow")

    # and it stays stopped along the way: called back, closed
    ok(act(client, city, "agent", in_time["id"], "callback", solved=True, satisfaction="satisfied"))
    assert deadline(client, city, "agent", in_time["id"])["stopped"] is True
    ok(act(client, city, "agent", in_time["id"], "close"))
    closed = deadline(client, city, "agent", in_time["id"])
    assert closed["stopped"] is True and closed["on_time"] is True


def test_a_transferred_ticket_has_no_countdown(client: TestClient, city: City) -> None:
    ticket = submit(client, city, text="小区燃气管道泄漏")
    ok(act(client, city, "agent", ticket["id"], "transfer", line="119"))
    info = deadline(client, city, "agent", ticket["id"])
    assert info["stopped"] is True and info["status"] == "transferred" and info["on_time"] is None


# --- 督办 / 问责 per unit --------------------------------------------------------------------------------------


def test_supervision_and_accountability_flags_are_per_unit(client: TestClient, city: City) -> None:
    ticket = submit(client, city)
    tid = ticket["id"]
    dispatch(client, city, tid, "cjjd", co=("cgj",))
    cgj = city.ids["unit:cgj"]
    ok(act(client, city, "supervisor", tid, "supervise", note="请市城管局三日内到场核查", unit_id=cgj))
    assert queue(client, city, "cjjd")[tid]["supervision_open"] is False  # the co-unit's order, not the lead's
    co_flags = queue(client, city, "cgj")[tid]
    assert co_flags["supervision_open"] is True and co_flags["supervision_due"]

    ok(act(client, city, "supervisor", tid, "supervise", note="请澄江街道今日内答复市民"))
    assert queue(client, city, "cjjd")[tid]["supervision_open"] is True
    ok(act(client, city, "cjjd", tid, "respond_supervision", note="已安排网格员到场"))
    assert queue(client, city, "cjjd")[tid]["supervision_open"] is False
    assert queue(client, city, "cgj")[tid]["supervision_open"] is True  # one unit's answer is not the other's

    # the page's own sources: each unit reads only its own orders
    mine = ok(client.get("/api/supervision", params={"state": "open"}, headers=city.headers("cgj")))
    assert [(o["ticket_id"], o["note"]) for o in mine] == [(tid, "请市城管局三日内到场核查")]
    assert ok(client.get("/api/supervision", params={"state": "open"}, headers=city.headers("cjjd"))) == []

    ok(act(client, city, "supervisor", tid, "accountability", decision="open", note="逾期未到场核查"))
    assert queue(client, city, "cjjd")[tid]["accountability_open"] is True
    assert queue(client, city, "cgj")[tid]["accountability_open"] is False
    cases = ok(client.get("/api/accountability", params={"state": "open"}, headers=city.headers("cjjd")))
    assert [(c["ticket_id"], c["reason"], c["state"]) for c in cases] == [(tid, "逾期未到场核查", "opened")]
    ok(act(client, city, "cjjd", tid, "accountability", decision="explain", note="当日暴雨，次日已到场",
           case_id=cases[0]["id"]))
    assert queue(client, city, "cjjd")[tid]["accountability_open"] is False  # explained: waits for a decision

    oversight = deadline(client, city, "supervisor", tid)  # oversight roles: any unit's order counts
    assert oversight["supervision_open"] is True and oversight["accountability_open"] is False
