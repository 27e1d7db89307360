"""What a unit must never learn: who a confidential caller is, another unit's ticket, a number in the text."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hotline.intake import auto_title
from hotline.views import mask_phones_in_text
from tests.conftest import City, act, submit


def dispatch(client: TestClient, city: City, ticket_id: int, unit: str) -> None:
    r = act(client, city, "agent", ticket_id, "dispatch", unit_id=city.ids[f"unit:{unit}"])
    assert r.status_code == 200, r.text


def test_units_cannot_look_tickets_up_by_citizen(client: TestClient, city: City) -> None:
    caller = {"name": "王先生", "phone": "13900005678"}
    open_ = submit(client, city, "建设路路灯不亮", citizen=caller)
    secret = submit(client, city, "举报某工地夜间施工", citizen=caller, confidential=True)
    for t in (open_, secret):
        dispatch(client, city, t["id"], "cjjd")
    citizen_id = client.get(f"/api/tickets/{open_['id']}", headers=city.headers("cjjd")).json()["citizen"]["id"]
    r = client.get(f"/api/tickets?citizen_id={citizen_id}", headers=city.headers("cjjd"))
    assert r.status_code == 403
    assert "市民" in r.json()["detail"]
    # The front desk still finds every ticket of the caller, the confidential one included.
    r = client.get(f"/api/tickets?citizen_id={citizen_id}", headers=city.headers("agent"))
    assert {t["id"] for t in r.json()["items"]} == {open_["id"], secret["id"]}


def test_a_confidential_ticket_never_names_its_caller_to_a_unit(client: TestClient, city: City) -> None:
    secret = submit(client, city, "举报某工地夜间施工", citizen={"name": "王先生", "phone": "13900005678"},
                    confidential=True)
    dispatch(client, city, secret["id"], "cjjd")
    listed = client.get("/api/tickets", headers=city.headers("cjjd")).json()["items"]
    assert [t["citizen"] for t in listed if t["id"] == secret["id"]] == [None]
    assert "王先生" not in client.get(f"/api/tickets/{secret['id']}", headers=city.headers("cjjd")).text


def test_a_merged_ticket_does_not_show_a_unit_the_other_units_parent(client: TestClient, city: City) -> None:
    child = submit(client, city)
    dispatch(client, city, child["id"], "cjjd")
    assert act(client, city, "cjjd", child["id"], "return", note="不属于本单位职责").status_code == 200
    parent = submit(client, city, "澄江街道建设路又有人摆摊")
    dispatch(client, city, parent["id"], "zjj")
    r = act(client, city, "agent", child["id"], "merge", parent_id=parent["id"], note="同一事件")
    assert r.status_code == 200 and r.json()["parent_id"] == parent["id"]

    seen = client.get(f"/api/tickets/{child['id']}", headers=city.headers("cjjd"))
    assert seen.status_code == 200
    assert seen.json()["parent_id"] is None
    assert parent["number"] not in seen.text
    merge = [e for e in seen.json()["events"] if e["type"] == "merge"]
    assert merge and "parent_id" not in merge[0]["data"] and "parent_number" not in merge[0]["data"]
    listed = client.get("/api/tickets", headers=city.headers("cjjd")).json()["items"]
    assert [t["parent_id"] for t in listed if t["id"] == child["id"]] == [None]


def test_a_unit_that_sees_the_parent_is_shown_it(client: TestClient, city: City) -> None:
    child = submit(client, city)
    dispatch(client, city, child["id"], "cjjd")
    assert act(client, city, "cjjd", child["id"], "return", note="重复件").status_code == 200
    parent = submit(client, city, "澄江街道建设路又有人摆摊")
    dispatch(client, city, parent["id"], "cjjd")
    act(client, city, "agent", child["id"], "merge", parent_id=parent["id"])
    seen = client.get(f"/api/tickets/{child['id']}", headers=city.headers("cjjd")).json()
    assert seen["parent_id"] == parent["id"]
    assert [e["data"]["parent_number"] for e in seen["events"] if e["type"] == "merge"] == [parent["number"]]


@pytest.mark.parametrize(("text", "masked"), [
    ("我电话13912345678，请回电", "我电话139****5678，请回电"),
    ("手机 +86 139-1234-5678", "手机 139****5678"),
    ("座机0571-88886666或010 62345678", "座机057*****6666或010****5678"),
    ("工单20261122000123已受理", "工单20261122000123已受理"),
    ("门牌号88886666号，金额12345678901234元", "门牌号88886666号，金额12345678901234元"),
])
def test_numbers_in_text_are_masked(text: str, masked: str) -> None:
    assert mask_phones_in_text(text) == masked


def test_phone_numbers_in_the_text_reach_only_full_number_roles(client: TestClient, city: City) -> None:
    t = submit(client, city, "澄江街道建设路有人占道经营，我电话13912345678", title="占道经营 13912345678")
    dispatch(client, city, t["id"], "cjjd")
    act(client, city, "agent", t["id"], "comment", note="市民补充：也可打13800001111")
    for who in ("cjjd", "dispatcher", "admin"):
        detail = client.get(f"/api/tickets/{t['id']}", headers=city.headers(who))
        assert "13912345678" not in detail.text and "13800001111" not in detail.text, who
        assert "139****5678" in detail.json()["text"] and "139****5678" in detail.json()["title"]
        assert "138****1111" in detail.json()["events"][-1]["note"]
        listed = client.get("/api/tickets", headers=city.headers(who)).text
        assert "13912345678" not in listed, who
    for who in ("agent", "supervisor"):
        assert "13912345678" in client.get(f"/api/tickets/{t['id']}", headers=city.headers(who)).json()["text"]


def test_the_callback_result_is_on_the_ticket_masked_as_for_every_text(client: TestClient, city: City) -> None:
    """What the citizen said at the callback is on the ticket (``last_callback``), also after a reopen, for every
    role that may see the ticket; numbers in it are masked for the roles that get masked numbers."""
    t = submit(client, city)
    dispatch(client, city, t["id"], "cjjd")
    act(client, city, "cjjd", t["id"], "sign")
    act(client, city, "cjjd", t["id"], "reply", note="已清理摊位")
    words = "摊位第二天又摆出来了，有事打我13912345678"
    act(client, city, "agent", t["id"], "callback", satisfaction="unsatisfied", solved=False, note=words)
    act(client, city, "supervisor", t["id"], "reopen", note="市民反映摊位仍在")
    dispatch(client, city, t["id"], "cjjd")
    masked = words.replace("13912345678", "139****5678")
    for who, note in (("agent", words), ("supervisor", words), ("dispatcher", masked), ("cjjd", masked)):
        shown = client.get(f"/api/tickets/{t['id']}", headers=city.headers(who)).json()["last_callback"]
        assert (shown["satisfaction"], shown["solved"], shown["note"]) == ("unsatisfied", False, note), who
    assert client.get(f"/api/tickets/{t['id']}", headers=city.headers("zjj")).status_code == 404


def test_a_channel_sees_its_own_ticket_masked(client: TestClient, city: City, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setitem(client.app.state.services.settings.channel_keys, "wechat", "k" * 24)  # type: ignore[attr-defined]
    r = client.post("/api/intake", json={"channel": "wechat", "text": "我电话13912345678，路灯不亮"},
                    headers={"Authorization": "Bearer " + "k" * 24})
    assert r.status_code == 201, r.text
    assert "13912345678" not in r.text and "139****5678" in r.json()["text"]


def test_a_title_cut_from_the_text_does_not_cut_through_a_number() -> None:
    text = "澄江街道建设路有人占道经营摊位堵住人行道我的电话13912345678请回电"  # no clause to stop at
    title = auto_title(text)
    assert len(title) <= 30 and not title[-1:].isdigit()  # the number is whole or left out, never cut
    assert mask_phones_in_text(title) == title
    assert auto_title("短文本") == "短文本"
