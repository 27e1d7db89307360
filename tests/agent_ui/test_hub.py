"""The live channel without a browser: token-first auth, unit isolation, replay, heartbeats, presence."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from starlette.websockets import WebSocketDisconnect

from agent_ui.hub import may_receive
from hotline import auth, workflow
from hotline.auth import Actor
from hotline.models import TicketEvent
from hotline.services import Services
from tests.conftest import City, act, submit


def connect(client: TestClient, city: City, who: str, **extra: Any) -> Any:
    ws = client.websocket_connect("/ws")
    session = ws.__enter__()
    session.send_json({"token": city.tokens[who], **extra})
    hello = session.receive_json()
    assert hello["type"] == "hello", hello
    session.hello = hello
    session.cm = ws
    return session


def close(session: Any) -> None:
    session.cm.__exit__(None, None, None)


def drain(session: Any, keep: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Everything the server queued for this client up to now: a ping/pong round trip is the barrier (the pong
    goes through the same per-connection queue as the events, after any event already fanned out)."""
    marker = time.monotonic()
    session.send_json({"type": "ping", "t": marker})
    out = []
    while True:
        message = session.receive_json()
        if message.get("type") == "pong" and message.get("t") == marker:
            return out
        if message.get("type") not in ("ping", "presence", "pong") or message.get("type") in keep:
            out.append(message)


def wait_for(session: Any, predicate: Any, limit: int = 50) -> dict[str, Any]:
    for _ in range(limit):
        message = session.receive_json()
        if predicate(message):
            return dict(message)
    raise AssertionError("expected message did not arrive")


def dispatch(
    client: TestClient, city: City, ticket_id: int, unit: str, co: list[str] | None = None, note: str = ""
) -> None:
    body: dict[str, Any] = {"unit_id": city.ids[f"unit:{unit}"]}
    if note:
        body["note"] = note
    if co:
        body["co_unit_ids"] = [city.ids[f"unit:{u}"] for u in co]
    response = act(client, city, "dispatcher", ticket_id, "dispatch", **body)
    assert response.status_code == 200, response.text


def test_token_must_come_first_not_in_the_query_string(client: TestClient, city: City) -> None:
    with client.websocket_connect(f"/ws?token={city.tokens['agent']}") as ws:
        ws.send_json({"hello": "no token here"})
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 4401
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"token": "not-a-jwt"})
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 4401 and exc.value.reason


def test_channel_keys_cannot_open_the_desk(client: TestClient, city: City) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"token": "demo-phone-key"})
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 4403


@pytest.mark.slow
def test_silent_client_is_closed_within_5_seconds(client: TestClient, city: City) -> None:
    hub = client.app.state.desk_hub  # type: ignore[attr-defined]
    assert hub.auth_timeout <= 5
    started = time.monotonic()
    with client.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect) as exc:
        ws.receive_json()
    elapsed = time.monotonic() - started
    assert exc.value.code == 4401
    # The hub closes at auth_timeout; the rest is the test client's thread hand-off, which on a loaded CI machine
    # took up to a second (5.96 s seen). Closed early would mean another rule closed it.
    assert hub.auth_timeout - 0.1 <= elapsed <= hub.auth_timeout + 2, elapsed


def test_events_reach_exactly_the_allowed_people(client: TestClient, city: City) -> None:
    cgj = connect(client, city, "cgj")
    zjj = connect(client, city, "zjj")
    agent = connect(client, city, "agent")
    sup = connect(client, city, "supervisor")
    try:
        ticket = submit(client, city)
        dispatch(client, city, ticket["id"], "cgj")
        assert act(client, city, "cgj", ticket["id"], "sign").status_code == 200
        got_cgj = drain(cgj)
        assert [m["type"] for m in got_cgj] == ["dispatch", "sign"]
        assert all(m["ticket_id"] == ticket["id"] and m["event_id"] for m in got_cgj)
        assert drain(zjj) == []  # another unit's ticket: nothing at all
        assert [m["type"] for m in drain(agent)] == ["receive", "dispatch", "sign"]
        assert [m["type"] for m in drain(sup)] == ["receive", "dispatch", "sign"]
    finally:
        for s in (cgj, zjj, agent, sup):
            close(s)


def test_co_units_get_events_and_redispatch_leaves_a_gone_notice(client: TestClient, city: City) -> None:
    cgj = connect(client, city, "cgj")
    zjj = connect(client, city, "zjj")
    cjjd = connect(client, city, "cjjd")
    try:
        ticket = submit(client, city)
        dispatch(client, city, ticket["id"], "cjjd", co=["cgj"])
        assert [m["type"] for m in drain(cgj)] == ["dispatch"]  # co-unit
        assert act(client, city, "cjjd", ticket["id"], "return", note="不属于本街道职责").status_code == 200
        assert [m["type"] for m in drain(cjjd)] == ["dispatch", "return"]  # published while still the lead
        dispatch(client, city, ticket["id"], "zjj", note="退单理由成立，改派住建局")  # a send-back needs a reason
        # (the hub looks the previous units up in the log first, so wait rather than use the ping barrier)
        gone = wait_for(cjjd, lambda m: m.get("type") != "ping")
        assert set(gone) == {"event_id", "type", "ticket_id", "ticket_number", "cause", "created_at"}
        assert gone["type"] == "ticket_gone" and gone["ticket_id"] == ticket["id"]
        assert wait_for(cgj, lambda m: m.get("type") != "ping")["type"] == "return"
        assert wait_for(cgj, lambda m: m.get("type") != "ping")["type"] == "ticket_gone"
        assert [m["type"] for m in drain(zjj)] == ["dispatch"]
        assert drain(cjjd) == [] and drain(cgj) == []
    finally:
        for s in (cgj, zjj, cjjd):
            close(s)


def test_replay_after_reconnect_in_order_without_duplicates(client: TestClient, city: City) -> None:
    first = connect(client, city, "cgj")
    start = first.hello["last_event_id"]
    close(first)
    mine = submit(client, city)
    dispatch(client, city, mine["id"], "cgj")
    other = submit(client, city, text="建设路工地夜间施工噪音扰民")
    dispatch(client, city, other["id"], "zjj")
    assert act(client, city, "cgj", mine["id"], "sign").status_code == 200

    again = connect(client, city, "cgj", last_event_id=start)
    zjj = connect(client, city, "zjj", last_event_id=start)
    try:
        # Replay uses the REST rule (tickets visible *now*, whole history, as GET /api/tickets/{id} shows it),
        # so the ticket's intake event comes too; the other unit's ticket never does.
        assert again.hello["replay"] == 3
        replayed = drain(again)
        assert [m["type"] for m in replayed] == ["receive", "dispatch", "sign"]
        assert all(m["ticket_id"] == mine["id"] and m.get("replayed") for m in replayed)
        ids = [m["event_id"] for m in replayed]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert {m["ticket_id"] for m in drain(zjj)} == {other["id"]}  # never the other unit's
        # then live, no duplicates at the seam
        assert act(client, city, "cgj", mine["id"], "comment", note="已安排人员到场").status_code == 200
        live = drain(again)
        assert [m["type"] for m in live] == ["comment"] and "replayed" not in live[0]
    finally:
        close(again)
        close(zjj)


def test_replay_dedupes_events_buffered_during_the_replay(client: TestClient, city: City) -> None:
    """An event both replayed from the log and arriving live at the seam is sent once."""
    hub = client.app.state.desk_hub  # type: ignore[attr-defined]
    ticket = submit(client, city)
    conn = connect(client, city, "agent", last_event_id=0)
    try:
        replayed = drain(conn)
        assert [m["type"] for m in replayed] == ["receive"]
        duplicate = {k: v for k, v in replayed[0].items() if k != "replayed"}
        client.portal.call(hub.dispatch, duplicate)  # type: ignore[union-attr]
        assert drain(conn) == []
        assert ticket["id"] == replayed[0]["ticket_id"]
    finally:
        close(conn)


def test_silent_connection_is_dropped(client: TestClient, city: City) -> None:
    hub = client.app.state.desk_hub  # type: ignore[attr-defined]
    conn = connect(client, city, "agent")
    try:
        hub.ping_interval = 0.05
        time.sleep(0.2)
        client.portal.call(hub.beat)  # type: ignore[union-attr]
        with pytest.raises(WebSocketDisconnect) as exc:
            while True:
                conn.receive_json()
        assert exc.value.code == 4408
    finally:
        hub.ping_interval = 20.0
        close(conn)


def test_ping_is_answered_keeps_connection(client: TestClient, city: City) -> None:
    hub = client.app.state.desk_hub  # type: ignore[attr-defined]
    conn = connect(client, city, "agent")
    try:
        client.portal.call(hub.beat)  # type: ignore[union-attr]
        assert conn.receive_json()["type"] == "ping"
        assert drain(conn) == []
        assert len(hub.connections) == 1
    finally:
        close(conn)


def test_presence_for_supervisors(client: TestClient, city: City) -> None:
    cgj = connect(client, city, "cgj")
    sup = connect(client, city, "supervisor")
    try:
        assert client.get("/api/desk/presence", headers=city.headers("agent")).status_code == 403
        response = client.get("/api/desk/presence", headers=city.headers("supervisor"))
        assert response.status_code == 200
        data = response.json()
        assert data["type"] == "presence" and data["users"] == 2
        groups = {(g["role"], g["unit_id"]): g for g in data["groups"]}
        assert groups[("unit_handler", city.ids["unit:cgj"])]["users"][0]["name"] == "城管局经办人"
        pushed = wait_for(sup, lambda m: m.get("type") == "presence")
        assert pushed["users"] >= 1
        time.sleep(0.7)  # past the hub's presence debounce
        assert "presence" not in [m["type"] for m in drain(cgj, keep=("presence",))]  # units are not told
    finally:
        close(sup)
        close(cgj)


def test_visibility_rule() -> None:
    unit = auth.Actor(1, "u", "u", "unit_handler", unit_id=7)
    message = {"lead_unit_id": 7, "co_unit_ids": []}
    assert may_receive(unit, message)
    assert may_receive(unit, {"lead_unit_id": 3, "co_unit_ids": [7]})
    assert not may_receive(unit, {"lead_unit_id": 3, "co_unit_ids": [8]})
    assert not may_receive(unit, {"lead_unit_id": None})
    for role in ("agent", "dispatcher", "supervisor", "admin"):
        assert may_receive(auth.Actor(2, "x", "x", role), {"lead_unit_id": 3})
    assert not may_receive(auth.channel_actor("phone"), {"lead_unit_id": 3})


# --- protocol edge cases and the replay seam ------------------------------------------------------------------


def test_a_binary_first_frame_is_a_bad_hello(client: TestClient, city: City) -> None:
    """``receive_text`` raised KeyError on a bytes frame; it is answered like any malformed hello: 4401."""
    hub = client.app.state.desk_hub  # type: ignore[attr-defined]
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(json.dumps({"token": city.tokens["agent"]}).encode())
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 4401 and "first message" in exc.value.reason
    assert not hub.connections
    for bad in ("[]", '"token"', "42", "{not json"):
        with client.websocket_connect("/ws") as ws:
            ws.send_text(bad)
            with pytest.raises(WebSocketDisconnect) as exc:
                ws.receive_json()
        assert exc.value.code == 4401, bad


def test_binary_frames_after_the_hello_are_ignored(client: TestClient, city: City) -> None:
    conn = connect(client, city, "agent")
    try:
        conn.send_bytes(b"\x00\x01garbage")
        ticket = submit(client, city)
        assert [m["ticket_id"] for m in drain(conn)] == [ticket["id"]]  # still connected, still live
    finally:
        close(conn)


def _event(services: Services, ticket_id: int, event_id: int, created_at: datetime, note: str) -> None:
    with services.sessions() as s:
        s.add(TicketEvent(id=event_id, ticket_id=ticket_id, type="comment", actor_name="测试", actor_role="agent",
                          note=note, data={}, created_at=created_at))
        s.commit()


def test_an_event_committed_late_with_a_lower_id_is_replayed(
    client: TestClient, city: City, services: Services
) -> None:
    """Ids are drawn at INSERT and become visible at COMMIT: id 11 can be seen before id 10 exists. The client
    reconnecting with last_event_id=11 must still get 10; it also gets nothing it saw long before (the window)."""
    ticket = submit(client, city)
    now = datetime.now(UTC)
    with services.sessions() as s:
        intake_id = int(s.scalar(select(func.max(TicketEvent.id))) or 0)
        # the intake event happened an hour ago: far outside the window although its id is within the margin
        s.execute(update(TicketEvent).where(TicketEvent.id == intake_id).values(created_at=now - timedelta(hours=1)))
        s.commit()
    base = intake_id + 100  # explicit ids: the order of drawing them is ours to choose
    _event(services, ticket["id"], base + 10, now, "先提交的事件（客户端已看到）")
    seen = connect(client, city, "agent", last_event_id=intake_id)
    try:
        assert [m["event_id"] for m in drain(seen)] == [base + 10]  # the client has seen 111 (not 1 again)
    finally:
        close(seen)
    # the transaction that drew the lower id commits only now, while the client is away
    _event(services, ticket["id"], base + 5, now - timedelta(seconds=2), "后提交的事件（编号更小）")
    again = connect(client, city, "agent", last_event_id=base + 10)
    try:
        replayed = drain(again)
        assert [m["event_id"] for m in replayed] == [base + 5]  # not 110 itself, not the hour-old intake event
        assert replayed[0]["replayed"] is True and again.hello["replay"] == 1
    finally:
        close(again)
    # an id this database never wrote: the whole margin below it comes back (the client drops what it has)
    unknown = connect(client, city, "agent", last_event_id=base + 7)
    try:
        assert [m["event_id"] for m in drain(unknown)] == [intake_id, base + 5, base + 10]
    finally:
        close(unknown)


def test_a_real_out_of_order_commit_is_not_lost(client: TestClient, city: City, services: Services) -> None:
    """The same with two real transactions (PostgreSQL: SQLite's BEGIN IMMEDIATE serialises writers, so there
    commits cannot come out of id order)."""
    if services.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): commits cannot come out of id order")
    first = submit(client, city)
    second = submit(client, city, text="建设路工地夜间施工噪音扰民")
    conn = connect(client, city, "agent")
    agent = Actor(city.ids["user:agent"], "agent", "话务员小王", "agent")
    slow = services.sessions()
    try:
        early = workflow.perform(slow, first["id"], "comment", agent, workflow.ReasonInput(note="慢事务的备注"),
                                 services.timing)  # id drawn, not committed
        assert act(client, city, "agent", second["id"], "comment", note="快事务的备注").status_code == 200
        live = drain(conn)
        assert [m["ticket_id"] for m in live] == [second["id"]] and live[0]["event_id"] > early.id
        last = live[0]["event_id"]
    finally:
        close(conn)
    early_id = early.id
    slow.commit()  # published while the client is away
    slow.close()
    again = connect(client, city, "agent", last_event_id=last)
    try:
        ids = [m["event_id"] for m in drain(again)]
        # the late one comes back, with the other recent ones (the intake events, which the client's lists
        # already show and which it drops if it saw them live); never the one it sent as its last
        assert early_id in ids and last not in ids and ids == sorted(ids)
    finally:
        close(again)


def test_an_unknown_last_event_id_asks_for_a_resync(client: TestClient, city: City) -> None:
    submit(client, city)
    conn = connect(client, city, "cgj", last_event_id=10_000_000)
    try:
        assert conn.hello["last_event_id"] < 10_000_000
        assert [m["type"] for m in drain(conn)] == ["resync"]
    finally:
        close(conn)


# --- hostile hellos and frames ---------------------------------------------------------------------------------


@pytest.mark.parametrize("last_event_id", [2**64, 2**63, 2**31, -1])
def test_a_last_event_id_out_of_range_is_a_bad_hello(client: TestClient, city: City, last_event_id: int,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"token": city.tokens["agent"], "last_event_id": last_event_id}))
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 4401 and "last_event_id" in exc.value.reason
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelname == "ERROR"]


def test_deeply_nested_brackets_are_closed_with_a_code(client: TestClient, city: City,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    for depth, code in ((100_000, 1009), (2_000, 4401)):  # over the hello's 4 KiB, and within it
        with client.websocket_connect("/ws") as ws:
            ws.send_text("[" * depth + "]" * depth)
            with pytest.raises(WebSocketDisconnect) as exc:
                ws.receive_json()
        assert exc.value.code == code, depth
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_frames_before_the_hello_is_authenticated_are_limited_to_4_kib(client: TestClient, city: City) -> None:
    hub = client.app.state.desk_hub  # type: ignore[attr-defined]
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"token": city.tokens["agent"], "pad": "x" * 5000}))
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 1009
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(b"x" * 5000)
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 1009
    assert not hub.connections


def test_after_the_hello_frames_may_be_bigger_but_not_without_limit(client: TestClient, city: City) -> None:
    conn = connect(client, city, "agent")
    try:
        conn.send_text(json.dumps({"type": "ping", "t": "x" * 10_000}))
        assert conn.receive_json()["type"] == "pong"
        conn.send_text("x" * (64 * 1024 + 1))
        with pytest.raises(WebSocketDisconnect) as exc:
            while True:
                conn.receive_json()
        assert exc.value.code == 1009
    finally:
        close(conn)
