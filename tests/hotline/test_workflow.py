"""The ticket life cycle of DOMAIN.md, driven through the API as agents, units and supervisors do."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import City, act, submit


def dispatch_to(client: TestClient, city: City, ticket_id: int, unit: str = "cjjd", **extra: object) -> dict:
    r = act(client, city, "agent", ticket_id, "dispatch", unit_id=city.ids[f"unit:{unit}"], **extra)
    assert r.status_code == 200, r.text
    return r.json()


def test_full_life_cycle_writes_one_event_per_change(client: TestClient, city: City) -> None:
    t = submit(client, city)
    assert t["status"] == "received" and t["number"].isdigit() and len(t["number"]) == 14
    dispatch_to(client, city, t["id"], co_unit_ids=[city.ids["unit:cgj"]])
    assert act(client, city, "cjjd", t["id"], "sign").status_code == 200
    r = act(client, city, "cjjd", t["id"], "reply", note="已组织执法队员清理摊位，并加强巡查。")
    assert r.status_code == 200 and r.json()["status"] == "replied"
    assert r.json()["callback_due"] is not None
    r = act(client, city, "agent", t["id"], "callback", satisfaction="satisfied", solved=True, note="市民表示满意")
    assert r.json()["status"] == "callback"
    r = act(client, city, "agent", t["id"], "close")
    detail = r.json()
    assert detail["status"] == "closed"
    assert [e["type"] for e in detail["events"]] == ["receive", "dispatch", "sign", "reply", "callback", "close"]
    assert [(e["from_status"], e["to_status"]) for e in detail["events"][1:]] == [
        ("received", "dispatched"), ("dispatched", "signed"), ("signed", "replied"),
        ("replied", "callback"), ("callback", "closed"),
    ]
    assert all(e["actor"] for e in detail["events"])


def test_dispatch_sets_working_time_deadlines(client: TestClient, city: City) -> None:
    t = submit(client, city)
    d = dispatch_to(client, city, t["id"])
    assert d["sign_due"] < d["reply_due"]
    assert d["dispatched_at"] < d["sign_due"]


def test_illegal_transition_is_409_naming_the_allowed_actions(client: TestClient, city: City) -> None:
    t = submit(client, city)
    r = act(client, city, "agent", t["id"], "close")
    assert r.status_code == 409
    body = r.json()
    assert body["status"] == "received"
    assert "dispatch" in body["allowed"] and "answer" in body["allowed"]


def test_another_units_ticket_is_404_not_403(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"], unit="cjjd")
    assert act(client, city, "zjj", t["id"], "sign").status_code == 404
    assert client.get(f"/api/tickets/{t['id']}", headers=city.headers("zjj")).status_code == 404
    listed = client.get("/api/tickets", headers=city.headers("zjj")).json()
    assert listed["total"] == 0


def test_co_unit_sees_the_ticket_but_cannot_sign_for_the_lead(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"], unit="cjjd", co_unit_ids=[city.ids["unit:cgj"]])
    assert client.get(f"/api/tickets/{t['id']}", headers=city.headers("cgj")).status_code == 200
    assert act(client, city, "cgj", t["id"], "sign").status_code == 403
    assert act(client, city, "cgj", t["id"], "comment", note="城管局已派员配合").status_code == 200


def test_unit_cannot_dispatch_and_agent_cannot_sign(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    assert act(client, city, "agent", t["id"], "sign").status_code == 403


def test_stale_version_is_409(client: TestClient, city: City) -> None:
    t = submit(client, city)
    version = t["version"]
    assert act(client, city, "agent", t["id"], "comment", note="first", version=version).status_code == 200
    r = act(client, city, "agent2", t["id"], "comment", note="second", version=version)
    assert r.status_code == 409 and "reload" in r.json()["detail"]


def test_send_back_then_refused_returns_to_the_same_unit(client: TestClient, city: City) -> None:
    t = submit(client, city)
    first = dispatch_to(client, city, t["id"])
    r = act(client, city, "cjjd", t["id"], "return", note="不属于本单位职责，应由城管局处理")
    assert r.json()["status"] == "returned"
    assert act(client, city, "cjjd", t["id"], "return", note="again").status_code == 409
    assert act(client, city, "agent", t["id"], "refuse_return", note="不同意退单").status_code == 403
    r = act(client, city, "dispatcher", t["id"], "refuse_return", note="派单目录明确由属地街道主办")
    assert r.json()["status"] == "dispatched"
    assert r.json()["unit"]["id"] == city.ids["unit:cjjd"]
    assert r.json()["reply_due"] == first["reply_due"]


def test_send_back_needs_a_reason(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    r = act(client, city, "cjjd", t["id"], "return")
    assert r.status_code == 422 and "note" in r.json()["detail"]


def test_waiting_for_the_citizen_stops_the_clock_and_resumes(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    act(client, city, "cjjd", t["id"], "sign")
    r = act(client, city, "cjjd", t["id"], "request_info", note="请补充：具体门牌号、占道时间段、现场照片")
    assert r.json()["status"] == "awaiting_citizen"
    r = act(client, city, "agent", t["id"], "provide_info", note="市民补充：建设路18号门口，每天17点后")
    assert r.json()["status"] == "signed"
    assert r.json()["events"][-1]["data"]["paused_from"] is not None


def test_extension_request_and_approval_moves_the_reply_deadline(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    signed = act(client, city, "cjjd", t["id"], "sign").json()
    r = act(client, city, "cjjd", t["id"], "request_extension", note="需协调多部门联合执法", working_hours=15)
    assert r.status_code == 200 and r.json()["extension_pending"] is True
    assert act(client, city, "cjjd", t["id"], "request_extension", note="again", working_hours=1).status_code == 409
    assert act(client, city, "dispatcher", t["id"], "decide_extension", approve=True, note="同意").status_code == 403
    r = act(client, city, "supervisor", t["id"], "decide_extension", approve=True, note="同意延期两个工作日")
    assert r.json()["reply_due"] > signed["reply_due"] and r.json()["extension_pending"] is False


def test_unsatisfied_callback_is_closed_only_by_a_supervisor_or_reopened(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    act(client, city, "cjjd", t["id"], "sign")
    act(client, city, "cjjd", t["id"], "reply", note="已处理")
    act(client, city, "agent", t["id"], "callback", satisfaction="unsatisfied", solved=False, note="摊位仍在")
    assert act(client, city, "agent", t["id"], "close").status_code == 403
    r = act(client, city, "supervisor", t["id"], "reopen", note="回访不满意，重办")
    assert r.json()["status"] == "reopened"
    assert dispatch_to(client, city, t["id"])["status"] == "dispatched"


def test_direct_answer_transfer_and_merge(client: TestClient, city: City) -> None:
    a = submit(client, city, "请问公积金怎么提取？")
    r = act(client, city, "agent", a["id"], "answer", note="按知识库第3条答复：携带身份证到公积金中心办理")
    assert r.json()["status"] == "answered"
    b = submit(client, city, "建设路闻到很浓的煤气味")
    r = act(client, city, "agent", b["id"], "transfer", line="119", note="一键转119")
    assert r.json()["status"] == "transferred" and r.json()["emergency_line"] == "119"
    assert act(client, city, "agent", b["id"], "transfer", line="999").status_code == 422
    c = submit(client, city)
    d = submit(client, city, "澄江街道建设路又有人摆摊占道")
    r = act(client, city, "agent", d["id"], "merge", parent_id=c["id"], note="同一事件")
    assert r.json()["status"] == "merged" and r.json()["parent_id"] == c["id"]
    assert act(client, city, "agent", c["id"], "merge", parent_id=c["id"]).status_code == 422


def test_recategorize_is_recorded_for_retraining(client: TestClient, city: City) -> None:
    t = submit(client, city)
    r = act(client, city, "agent", t["id"], "recategorize", category_id=city.ids["cat:zhandao"], note="")
    assert r.json()["category"]["name"] == "占道经营"
    assert r.json()["events"][-1]["data"]["to_category_id"] == city.ids["cat:zhandao"]


def test_supervision_and_accountability_are_events(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    assert act(client, city, "dispatcher", t["id"], "remind", note="请尽快签收").status_code == 200
    r = act(client, city, "supervisor", t["id"], "supervise", note="督办：两日内书面答复",
            due_at="2026-11-25T17:30:00+08:00")
    assert r.json()["events"][-1]["data"]["due_at"].startswith("2026-11-25")
    assert act(client, city, "cjjd", t["id"], "respond_supervision", note="已安排专人处理").status_code == 200
    r = act(client, city, "supervisor", t["id"], "accountability", note="超期未签收，启动问责")
    assert r.status_code == 200
    assert act(client, city, "cjjd", t["id"], "accountability", note="说明情况", decision="explain").status_code == 200
    assert act(client, city, "cjjd", t["id"], "accountability", note="我们维持", decision="uphold").status_code == 403


def test_unknown_action_and_unknown_ticket_are_404(client: TestClient, city: City) -> None:
    t = submit(client, city)
    assert act(client, city, "agent", t["id"], "teleport").status_code == 404
    assert act(client, city, "agent", 999_999, "sign").status_code == 404


def test_action_payload_unknown_field_is_422_naming_it(client: TestClient, city: City) -> None:
    t = submit(client, city)
    r = act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"], colour="red")
    assert r.status_code == 422 and "colour" in r.json()["detail"]
    r = act(client, city, "agent", t["id"], "dispatch", unit_id=987654)
    assert r.status_code == 422 and "unit" in r.json()["detail"]
