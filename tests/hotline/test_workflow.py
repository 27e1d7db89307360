"""The ticket life cycle of DOMAIN.md, driven through the API as agents, units and supervisors do."""

from __future__ import annotations

import re

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
    assert r.status_code == 409 and "reload" in r.json()["message"]


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
    assert r.json()["reply_due"] >= first["reply_due"]  # moved on by the centre's wait, never earlier


def test_send_back_needs_a_reason(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    r = act(client, city, "cjjd", t["id"], "return")
    assert r.status_code == 422 and "note" in r.json()["message"]


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


def test_after_a_transfer_a_follow_up_ticket_goes_through_the_intake_for_the_same_citizen(
    client: TestClient, city: City
) -> None:
    """转警 ends the ticket; what a unit must still do is a 关联工单 made from it: the normal intake, the same
    citizen and channel, as confidential as the original, each ticket naming the other in its history."""
    leak = submit(client, city, "建设路闻到很浓的煤气味，我电话13912345678", confidential=True,
                  citizen={"name": "王先生", "phone": "13800003333"})
    refused = act(client, city, "agent", leak["id"], "follow_up", text=leak["text"])
    assert refused.status_code == 409 and "transfer" in refused.json()["allowed"]
    assert act(client, city, "agent", leak["id"], "transfer", line="119").status_code == 200
    assert act(client, city, "agent", leak["id"], "follow_up", text="  ").status_code == 422
    assert act(client, city, "cjjd", leak["id"], "follow_up", text=leak["text"]).status_code == 404
    # a dispatcher reads the text with the number masked: sent back unchanged, the follow-up keeps the original
    shown = client.get(f"/api/tickets/{leak['id']}", headers=city.headers("dispatcher")).json()
    assert "follow_up" in shown["allowed_actions"] and "139****5678" in shown["text"]
    r = act(client, city, "dispatcher", leak["id"], "follow_up", text=shown["text"], note="燃气管道需上门检修")
    assert r.status_code == 200, r.text
    source = r.json()
    assert source["status"] == "transferred" and [e["type"] for e in source["events"]][-2:] == ["transfer",
                                                                                                 "follow_up"]
    link = source["events"][-1]
    assert link["note"] == "燃气管道需上门检修" and link["to_status"] is None
    follow = client.get(f"/api/tickets/{link['data']['follow_up_id']}", headers=city.headers("agent")).json()
    assert follow["number"] == link["data"]["follow_up_number"] and follow["status"] == "received"
    assert follow["text"] == leak["text"] and follow["channel"] == "phone" and follow["confidential"]
    assert follow["citizen"]["id"] == leak["citizen"]["id"]
    receive = follow["events"][0]
    assert receive["type"] == "receive"
    assert (receive["data"]["follows_id"], receive["data"]["follows_line"]) == (leak["id"], "119")
    # the unit gets it by the normal dispatch and learns which line took the emergency, not the other ticket
    dispatch_to(client, city, follow["id"], unit="zjj")
    unit_view = client.get(f"/api/tickets/{follow['id']}", headers=city.headers("zjj")).json()
    assert unit_view["citizen"] is None
    assert unit_view["events"][0]["data"]["follows_line"] == "119"
    assert "follows_id" not in unit_view["events"][0]["data"] and leak["number"] not in str(unit_view)


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
            due_at="2030-11-25T17:30:00+08:00")
    assert r.json()["events"][-1]["data"]["due_at"].startswith("2030-11-25")
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
    assert r.status_code == 422 and "colour" in r.json()["message"]
    r = act(client, city, "agent", t["id"], "dispatch", unit_id=987654)
    assert r.status_code == 422 and "unit" in r.json()["message"]


def replied_ticket(client: TestClient, city: City, **dispatch: object) -> int:
    t = submit(client, city)
    dispatch_to(client, city, t["id"], **dispatch)
    assert act(client, city, "cjjd", t["id"], "sign").status_code == 200
    assert act(client, city, "cjjd", t["id"], "reply", note="已处理").status_code == 200
    return int(t["id"])


def test_a_callback_always_reached_the_citizen(client: TestClient, city: City) -> None:
    ticket_id = replied_ticket(client, city)
    r = act(client, city, "agent", ticket_id, "callback", satisfaction="unsatisfied", solved=False, reached=False)
    assert r.status_code == 422 and "callback_attempt" in r.json()["message"]
    detail = client.get(f"/api/tickets/{ticket_id}", headers=city.headers("agent")).json()
    assert detail["status"] == "replied" and detail["solved"] is None and detail["satisfaction"] is None


def test_failed_callback_attempts_are_counted_and_keep_the_ticket_replied(client: TestClient, city: City) -> None:
    ticket_id = replied_ticket(client, city)
    for attempt in (1, 2):
        r = client.post(f"/api/tickets/{ticket_id}/actions/callback_attempt", json={"note": f"第{attempt}次无人接听"},
                        headers=city.headers("agent"))
        assert r.status_code == 200, r.text
        last = r.json()["events"][-1]
        assert (last["type"], last["note"], last["data"]["attempt"]) == ("callback_attempt", f"第{attempt}次无人接听",
                                                                          attempt)
        assert r.json()["status"] == "replied" and "callback_attempt" in r.json()["allowed_actions"]
    assert act(client, city, "cjjd", ticket_id, "callback_attempt").status_code == 403
    r = act(client, city, "supervisor", ticket_id, "close", note="多次联系不上市民")
    assert r.status_code == 409 and "3" in r.json()["message"]
    assert act(client, city, "dispatcher", ticket_id, "callback_attempt").json()["events"][-1]["data"]["attempt"] == 3
    # the citizen can still be reached later: a callback is allowed after failed attempts
    assert "callback" in client.get(f"/api/tickets/{ticket_id}", headers=city.headers("agent")).json()[
        "allowed_actions"]


def test_a_supervisor_closes_an_unreachable_ticket_after_three_attempts(client: TestClient, city: City) -> None:
    ticket_id = replied_ticket(client, city)
    for _ in range(3):
        assert act(client, city, "agent", ticket_id, "callback_attempt", note="关机").status_code == 200
    agent_view = client.get(f"/api/tickets/{ticket_id}", headers=city.headers("agent")).json()
    assert "close" not in agent_view["allowed_actions"]
    assert act(client, city, "agent", ticket_id, "close", note="联系不上").status_code == 403
    assert act(client, city, "supervisor", ticket_id, "close").status_code == 422  # a reason is required
    r = act(client, city, "supervisor", ticket_id, "close", note="三次回访均未接通，按规定归档")
    assert r.status_code == 200 and r.json()["status"] == "closed"
    data = r.json()["events"][-1]["data"]
    assert data["unreachable"] is True and data["callback_attempts"] == 3 and data["solved"] is None


def test_attempts_count_per_round(client: TestClient, city: City) -> None:
    ticket_id = replied_ticket(client, city)
    for _ in range(3):
        act(client, city, "agent", ticket_id, "callback_attempt")
    act(client, city, "agent", ticket_id, "callback", satisfaction="unsatisfied", solved=False, note="终于接通")
    act(client, city, "supervisor", ticket_id, "reopen", note="未解决，重办")
    dispatch_to(client, city, ticket_id)
    act(client, city, "cjjd", ticket_id, "sign")
    act(client, city, "cjjd", ticket_id, "reply", note="再次处理")
    r = act(client, city, "agent", ticket_id, "callback_attempt")
    assert r.json()["events"][-1]["data"]["attempt"] == 1
    assert act(client, city, "supervisor", ticket_id, "close", note="联系不上").status_code == 409


def test_a_pending_extension_lapses_when_the_round_ends(client: TestClient, city: City) -> None:
    replied = submit(client, city)
    dispatch_to(client, city, replied["id"])
    act(client, city, "cjjd", replied["id"], "sign")
    act(client, city, "cjjd", replied["id"], "request_extension", note="需协调多部门", working_hours=15)
    r = act(client, city, "cjjd", replied["id"], "reply", note="已提前办结")
    assert r.json()["extension_pending"] is False
    assert r.json()["events"][-1]["data"]["extension_request_lapsed"] is True
    returned = submit(client, city)
    dispatch_to(client, city, returned["id"])
    act(client, city, "cjjd", returned["id"], "request_extension", note="需协调多部门", working_hours=15)
    r = act(client, city, "cjjd", returned["id"], "return", note="经核实不属于本街道")
    assert r.json()["extension_pending"] is False
    assert r.json()["events"][-1]["data"]["extension_request_lapsed"] is True
    r = act(client, city, "dispatcher", returned["id"], "dispatch", unit_id=city.ids["unit:cgj"], note="改派城管局")
    assert "extension_request_lapsed" not in r.json()["events"][-1]["data"]  # nothing was pending any more
    plain = submit(client, city)
    dispatch_to(client, city, plain["id"])
    r = act(client, city, "cjjd", plain["id"], "return", note="不属于本街道")
    assert "extension_request_lapsed" not in r.json()["events"][-1]["data"]


def test_co_unit_handlers_see_the_actions_open_to_co_units(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"], co_unit_ids=[city.ids["unit:cgj"]])
    allowed = client.get(f"/api/tickets/{t['id']}", headers=city.headers("cgj")).json()["allowed_actions"]
    assert "comment" in allowed and "sign" not in allowed and "respond_supervision" in allowed
    lead = client.get(f"/api/tickets/{t['id']}", headers=city.headers("cjjd")).json()["allowed_actions"]
    assert {"sign", "comment", "return"} <= set(lead)
    listed = client.get("/api/tickets", headers=city.headers("cgj")).json()["items"]
    assert "comment" in listed[0]["allowed_actions"]


def test_re_dispatching_a_send_back_is_a_dispatchers_decision_with_a_reason(client: TestClient, city: City) -> None:
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    act(client, city, "cjjd", t["id"], "return", note="不属于本街道职责")
    agent_view = client.get(f"/api/tickets/{t['id']}", headers=city.headers("agent")).json()
    assert "dispatch" not in agent_view["allowed_actions"]
    assert "dispatch" in client.get(f"/api/tickets/{t['id']}", headers=city.headers("dispatcher")).json()[
        "allowed_actions"]
    r = act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cgj"], note="改派城管局")
    assert r.status_code == 403
    r = act(client, city, "dispatcher", t["id"], "dispatch", unit_id=city.ids["unit:cgj"])
    assert r.status_code == 422 and "note" in r.json()["message"]
    r = act(client, city, "supervisor", t["id"], "dispatch", unit_id=city.ids["unit:cgj"], note="属城管局职责，改派")
    assert r.status_code == 200 and r.json()["unit"]["id"] == city.ids["unit:cgj"]
    # a first dispatch needs no reason and may be an agent's
    fresh = submit(client, city)
    assert act(client, city, "agent", fresh["id"], "dispatch", unit_id=city.ids["unit:cjjd"]).status_code == 200


def test_every_refusal_tells_people_in_chinese_and_machines_in_english(client: TestClient, city: City) -> None:
    """The three messages seen on the desk (issue 13): ``detail`` is what a person reads, in Chinese; ``message``
    keeps the English for logs and clients."""
    latin_word = re.compile(r"[A-Za-z]{3,}")
    t = submit(client, city)
    dispatch_to(client, city, t["id"])
    stale = act(client, city, "cjjd", t["id"], "sign", version=1)
    assert stale.status_code == 409
    assert "已被他人修改" in stale.json()["detail"] and not latin_word.search(stale.json()["detail"])
    assert "reload" in stale.json()["message"]
    short = act(client, city, "cjjd", t["id"], "return", note="否")
    assert short.status_code == 422
    assert short.json()["detail"] == "说明至少需要 2 个字"
    assert "at least 2 characters" in short.json()["message"]
    undecided = act(client, city, "supervisor", t["id"], "decide_extension", approve=True, note="同意延期")
    assert undecided.status_code == 409
    assert undecided.json()["detail"] == "此工单没有待审批的延期申请"
    assert undecided.json()["message"] == "no extension request is waiting for a decision"
    for refused in (
        act(client, city, "cjjd", t["id"], "answer", note="已答复"),  # a unit may not answer directly (403)
        act(client, city, "agent", t["id"], "sign"),
        client.post("/api/intake", json={"channel": "phone"}, headers=city.headers("agent")),
        client.get("/api/tickets/999999", headers=city.headers("agent")),
    ):
        assert refused.status_code >= 400
        assert not latin_word.search(refused.json()["detail"]), refused.json()
