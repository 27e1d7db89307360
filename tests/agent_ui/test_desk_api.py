"""The /api/desk endpoints and the pages: who may call what, and what a unit can (not) read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from hotline.models import Ticket
from hotline.services import Services
from tests.conftest import City, act, submit


def dispatch(client: TestClient, city: City, ticket_id: int, unit: str) -> None:
    response = act(client, city, "dispatcher", ticket_id, "dispatch", unit_id=city.ids[f"unit:{unit}"])
    assert response.status_code == 200, response.text


def test_pages_are_served_with_a_strict_csp(client: TestClient) -> None:
    for path in ("/", "/desk/agent", "/desk/unit", "/desk/callback", "/desk/supervisor"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "<script>" not in response.text  # no inline scripts, only modules from /static
    assert client.get("/desk/agent?filename=../../hotline/settings.py").text == client.get("/desk/agent").text
    vendor = client.get("/static/vendor/echarts.min.js")
    assert vendor.status_code == 200 and len(vendor.content) > 500_000
    assert client.get("/static/vendor/LICENSE").status_code == 200


def test_screen_pop_is_for_the_front_desk_and_shows_the_callers_history(client: TestClient, city: City) -> None:
    first = submit(client, city, citizen={"phone": "138-0000-1234", "name": "王先生"})
    submit(client, city, text="另一个人的诉求", citizen={"phone": "13900009999"})
    response = client.get("/api/desk/citizens", params={"phone": "13800001234"}, headers=city.headers("agent"))
    assert response.status_code == 200
    data = response.json()
    assert [c["name"] for c in data["citizens"]] == ["王先生"]
    assert [t["id"] for t in data["tickets"]] == [first["id"]]
    assert data["tickets"][0]["citizen"]["phone"] == "13800001234"  # agents call back: full number
    for who in ("cgj", "admin"):  # units and admins take no calls
        assert client.get("/api/desk/citizens", params={"phone": "13800001234"},
                          headers=city.headers(who)).status_code == 403
    bad = client.get("/api/desk/citizens", params={"phone": "1380000abcd"}, headers=city.headers("agent"))
    assert bad.status_code == 422


def test_unit_queue_and_deadlines_only_show_the_units_tickets(client: TestClient, city: City) -> None:
    mine = submit(client, city)
    dispatch(client, city, mine["id"], "cgj")
    theirs = submit(client, city, text="工地噪音")
    dispatch(client, city, theirs["id"], "zjj")
    queue = client.get("/api/desk/unit-queue", headers=city.headers("cgj")).json()
    assert [t["id"] for t in queue["items"]] == [mine["id"]]
    info = queue["items"][0]["deadline"]
    assert info["reply_left_s"] > 0 and info["light"] == "green" and info["yellow_at"]
    assert queue["periods"] and all(a < b for a, b in queue["periods"])
    both = f"{mine['id']},{theirs['id']}"
    deadlines = client.get("/api/desk/deadlines", params={"ids": both}, headers=city.headers("cgj")).json()
    assert set(deadlines["tickets"]) == {str(mine["id"])}
    assert client.get("/api/desk/unit-queue", headers=city.headers("agent")).status_code == 403


def test_deadline_colours(client: TestClient, city: City, services: Services) -> None:
    ticket = submit(client, city)
    dispatch(client, city, ticket["id"], "cgj")
    now = datetime.now(UTC)
    with services.sessions() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket["id"]).values(
            urgent=True, dispatched_at=now - timedelta(hours=10), reply_due=now + timedelta(hours=2)))
        s.commit()
    info = client.get("/api/desk/deadlines", params={"ids": ticket["id"]},
                      headers=city.headers("supervisor")).json()["tickets"][str(ticket["id"])]
    assert info["clock"] is True and info["light"] == "yellow"
    assert 0 < info["fraction"] <= 0.25
    assert datetime.fromisoformat(info["yellow_at"]) <= now
    with services.sessions() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket["id"]).values(reply_due=now - timedelta(minutes=1)))
        s.commit()
    board = client.get("/api/desk/board", headers=city.headers("supervisor")).json()
    assert board["counts"]["overdue"] == 1
    assert [t["deadline"]["light"] for t in board["watch"]] == ["red"]


def test_board_and_stats_are_for_supervisors(client: TestClient, city: City) -> None:
    t1 = submit(client, city)
    submit(client, city, text="微信反映的问题", channel="wechat")
    dispatch(client, city, t1["id"], "cgj")
    assert act(client, city, "cgj", t1["id"], "return", note="不属于本单位职责").status_code == 200
    for who in ("agent", "cgj", "dispatcher"):
        assert client.get("/api/desk/board", headers=city.headers(who)).status_code == 403
        assert client.get("/api/desk/stats", headers=city.headers(who)).status_code == 403
    board = client.get("/api/desk/board", headers=city.headers("supervisor")).json()
    assert [t["id"] for t in board["returned"]] == [t1["id"]]
    # the unit's clock stands still; what the supervisor sees running is the centre's own wait
    waiting = board["returned"][0]["deadline"]
    assert waiting["paused"] is True and waiting["centre_waiting_since"] is not None
    assert waiting["centre_waiting_s"] >= 0
    assert board["watch"] == []
    stats = client.get("/api/desk/stats", params={"days": 7}, headers=city.headers("admin")).json()
    assert len(stats["days"]) == 7 and stats["total"] == 2
    channels = {s["key"]: sum(s["counts"]) for s in stats["channel"]}
    assert channels == {"phone": 1, "wechat": 1}
    assert {s["name"] for s in stats["channel"]} == {"电话", "微信"}


def test_triage_urgent_first_and_callbacks_oldest_first(client: TestClient, city: City, services: Services) -> None:
    plain = submit(client, city)
    urgent = submit(client, city, text="燃气管道泄漏")
    with services.sessions() as s:
        s.execute(update(Ticket).where(Ticket.id == urgent["id"]).values(urgent=True))
        s.commit()
    triage = client.get("/api/desk/triage", headers=city.headers("agent")).json()["items"]
    assert [t["id"] for t in triage] == [urgent["id"], plain["id"]]
    assert client.get("/api/desk/triage", headers=city.headers("cgj")).status_code == 403
    for t in (plain, urgent):
        assert act(client, city, "agent", t["id"], "answer", note="已答复市民").status_code == 200
    callbacks = client.get("/api/desk/callbacks", headers=city.headers("agent")).json()["items"]
    assert [t["id"] for t in callbacks] == [plain["id"], urgent["id"]]


def test_every_page_gets_its_favicon(client: TestClient) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
