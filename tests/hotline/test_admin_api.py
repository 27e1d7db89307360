"""The admin endpoints behind the admin desk: accounts (search, change, disable, reset, a unit's handler), the
import preview, the channels list, and the rule that every admin change is one audit event written with it."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import select

from hotline.models import AuditEvent
from hotline.services import Services
from tests.conftest import City


def events(services: Services, entity: str) -> list[AuditEvent]:
    with services.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.entity == entity).order_by(AuditEvent.id)))


def test_users_are_searched_by_name_role_and_activity(client: TestClient, city: City) -> None:
    found = client.get("/api/users", params={"q": "街道"}, headers=city.headers("admin")).json()
    assert [u["username"] for u in found] == ["cjjd"]
    handlers = client.get("/api/users", params={"role": "unit_handler"}, headers=city.headers("admin")).json()
    assert {u["username"] for u in handlers} == {"cgj", "zjj", "cjjd"}
    assert client.get("/api/users", headers=city.headers("supervisor")).status_code == 403


def test_a_unit_handler_account_is_one_call_named_after_the_unit(
    client: TestClient, services: Services, city: City
) -> None:
    first = client.post("/api/users/unit-handler", json={"unit_id": city.ids["unit:zjj"]},
                        headers=city.headers("admin"))
    second = client.post("/api/users/unit-handler", json={"unit_id": city.ids["unit:zjj"]},
                         headers=city.headers("admin"))
    assert first.status_code == second.status_code == 201
    assert [first.json()["user"]["username"], second.json()["user"]["username"]] == ["mh-zjj", "mh-zjj-2"]
    login = client.post("/api/auth/login", json={"username": "mh-zjj", "password": first.json()["password"]})
    assert login.status_code == 200
    (event, _) = events(services, "user")
    assert event.actor_id == city.ids["user:admin"] and event.action == "create"
    assert event.after is not None and event.after["unit_id"] == city.ids["unit:zjj"]
    assert "password_hash" not in event.after


def test_changing_role_and_unit_is_audited_with_before_and_after(
    client: TestClient, services: Services, city: City
) -> None:
    uid = city.ids["user:cjjd"]
    moved = client.patch(f"/api/users/{uid}", json={"unit_id": city.ids["unit:cgj"]}, headers=city.headers("admin"))
    assert moved.status_code == 200 and moved.json()["unit_id"] == city.ids["unit:cgj"]
    agent = client.patch(f"/api/users/{uid}", json={"role": "agent"}, headers=city.headers("admin")).json()
    assert agent["role"] == "agent" and agent["unit_id"] is None  # an agent belongs to no unit
    bad = client.patch(f"/api/users/{uid}", json={"role": "unit_handler"}, headers=city.headers("admin"))
    assert bad.status_code == 422 and bad.json()["field"] == "unit_id"
    trail = events(services, "user")
    assert len(trail) == 2  # the refused change left nothing
    assert trail[0].before and trail[0].after
    assert (trail[0].before["unit_id"], trail[0].after["unit_id"]) == (city.ids["unit:cjjd"], city.ids["unit:cgj"])


def test_a_disabled_account_and_a_reset_password_take_effect_at_once(client: TestClient, city: City) -> None:
    uid = city.ids["user:agent2"]
    reset = client.post(f"/api/users/{uid}/password", json={}, headers=city.headers("admin")).json()
    assert client.post("/api/auth/login", json={"username": "agent2", "password": "agent2123"}).status_code == 401
    assert client.post("/api/auth/login", json={"username": "agent2", "password": reset["password"]}).status_code == 200
    client.patch(f"/api/users/{uid}", json={"active": False}, headers=city.headers("admin"))
    assert client.get("/api/me", headers=city.headers("agent2")).status_code == 401


def test_an_admin_cannot_disable_or_demote_themself(client: TestClient, city: City) -> None:
    uid = city.ids["user:admin"]
    for patch in ({"active": False}, {"role": "agent"}):
        assert client.patch(f"/api/users/{uid}", json=patch, headers=city.headers("admin")).status_code == 422


def test_last_activity_is_recorded_on_login_and_requests(client: TestClient, city: City) -> None:
    client.get("/api/me", headers=city.headers("supervisor"))
    users = {u["username"]: u for u in client.get("/api/users", headers=city.headers("admin")).json()}
    assert users["supervisor"]["last_active_at"] is not None and users["admin"]["last_active_at"] is not None
    assert users["agent2"]["last_active_at"] is None


def _units_book(rows: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "单位"
    sheet.append(["编码", "名称", "类型", "服务区域编码", "启用"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_the_import_preview_lists_added_changed_and_removed_rows_and_writes_nothing(
    client: TestClient, services: Services, city: City
) -> None:
    book = _units_book([["mh-sw", "明湖市水务局", "bureau", "mh", "是"],
                        ["mh-zjj", "明湖市住房和城乡建设局", "bureau", "mh-dh", "是"],
                        ["mh-cgj", "明湖市城市管理局", "bureau", "mh", "是"],
                        ["mh-dh-cj", "澄江街道办事处", "street_office", "mh-dh-cj", "否"]])
    headers = {**city.headers("admin"), "Content-Type": "application/octet-stream"}
    preview = client.post("/api/directory/import.xlsx?dry_run=true", content=book, headers=headers)
    assert preview.status_code == 200, preview.text
    changes = {c["key"]: (c["change"], c["row"]) for c in preview.json()["changes"]}
    assert changes == {"mh-sw": ("added", 2), "mh-zjj": ("changed", 3), "mh-dh-cj": ("removed", 5)}
    assert events(services, "directory") == []
    assert all(u["code"] != "mh-sw" for u in client.get("/api/units", headers=city.headers("admin")).json())
    applied = client.post("/api/directory/import.xlsx", content=book, headers=headers)
    assert applied.status_code == 200 and applied.json()["changes"] == preview.json()["changes"]
    (event,) = events(services, "directory")
    assert event.action == "import" and event.after and len(event.after["changes"]) == 3


def test_an_import_error_names_its_sheet_and_row(client: TestClient, city: City) -> None:
    book = _units_book([["mh-sw", "明湖市水务局", "bureau", "mh", "是"],
                        ["mh-jt", "交通局", "bureau", "nowhere", "是"]])
    headers = {**city.headers("admin"), "Content-Type": "application/octet-stream"}
    refused = client.post("/api/directory/import.xlsx?dry_run=true", content=book, headers=headers)
    assert refused.status_code == 422
    assert [(e["sheet"], e["row"]) for e in refused.json()["errors"]] == [("单位", 3)]


def test_catalogue_calendar_policy_and_knowledge_changes_are_audited(
    client: TestClient, services: Services, city: City
) -> None:
    admin = city.headers("admin")
    rules = client.get("/api/catalogue", headers=admin).json()["rules"]
    rule = rules[0]
    body = {k: rule[k] for k in ("category_id", "area_id", "lead_unit_id", "co_unit_ids", "note", "active")}
    client.put(f"/api/catalogue/{rule['id']}", json={**body, "note": "改了"}, headers=admin)
    client.put("/api/calendar/overrides/2026-12-03", json={"working": False, "note": "本地假日"}, headers=admin)
    client.put("/api/deadline-policies", json={"scope": "kind", "kind": "help", "reply_days": 4}, headers=admin)
    client.post("/api/knowledge", json={"title": "停水通知", "body": "停水时间以水务局公告为准。"}, headers=admin)
    (r,) = events(services, "rule")
    assert r.before and r.after and (r.before["note"], r.after["note"]) == ("", "改了")
    assert [e.entity for e in events(services, "calendar_override")] == ["calendar_override"]
    assert events(services, "deadline_policy")[0].after["reply_days"] == 4  # type: ignore[index]
    assert events(services, "article")[0].action == "create"
    listed = client.get("/api/audit", headers=admin).json()
    assert [e["entity"] for e in listed] == ["article", "deadline_policy", "calendar_override", "rule"]


def test_channels_show_which_are_on_and_where_they_deliver(client: TestClient, city: City) -> None:
    channels = {c["channel"]: c for c in client.get("/api/channels", headers=city.headers("admin")).json()}
    assert channels["web"]["enabled"] and channels["web"]["url"] == "/public"
    # no HOTLINE_PUBLIC_BASE_URL (the phone channel is off): the path on this server
    assert channels["wechat"]["enabled"] and channels["wechat"]["url"] == "/channels/wechat"
    assert channels["phone"]["enabled"] is False and "HOTLINE_PHONE_ENABLED" in channels["phone"]["note"]
    assert channels["email"]["enabled"] is False
