"""Calendar overrides, loaded years and deadline policies edited by admins, used by new dispatches at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from hotline.services import Services
from routing.calendar import PACKAGE_YEARS
from tests.conftest import City, act, submit

START = "2026-12-01T09:00:00+08:00"  # a Tuesday


def preview(client: TestClient, city: City, **params: Any) -> dict[str, Any]:
    r = client.get("/api/deadline-policies/preview", params={"start": START, **params}, headers=city.headers("agent"))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_override_makes_a_day_off_and_deadlines_follow_at_once(client: TestClient, city: City,
                                                               services: Services) -> None:
    before = preview(client, city, kind="help")
    assert before["reply_due"].startswith("2026-12-04T09:00")  # 3 working days
    r = client.put("/api/calendar/overrides/2026-12-02", json={"working": False, "note": "台风停工"},
                   headers=city.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["overrides"] == [{"day": "2026-12-02", "working": False, "note": "台风停工"}]
    assert not services.timing.calendar.is_working_day(datetime(2026, 12, 2).date())
    assert preview(client, city, kind="help")["reply_due"].startswith("2026-12-07T09:00")  # skips 2 Dec + weekend
    assert client.put("/api/calendar/overrides/2026-12-02", json={"working": False},
                      headers=city.headers("supervisor")).status_code == 403
    assert client.delete("/api/calendar/overrides/2026-12-02", headers=city.headers("admin")).status_code == 200
    assert preview(client, city, kind="help")["reply_due"].startswith("2026-12-04T09:00")
    assert client.delete("/api/calendar/overrides/2026-12-02", headers=city.headers("admin")).status_code == 404


def test_schedule_warnings_until_the_year_is_loaded(client: TestClient, city: City) -> None:
    year = max(PACKAGE_YEARS) + 1
    cal = client.get("/api/calendar", headers=city.headers("agent")).json()
    today = datetime.now().year
    if today <= year <= today + 1:
        assert any(w.startswith(f"{year}年节假日安排未加载") for w in cal["warnings"])
    r = client.put(f"/api/calendar/years/{year}", json={"note": "国务院办公厅通知已录入"},
                   headers=city.headers("admin"))
    assert r.status_code == 200, r.text
    assert year in r.json()["known_years"] and r.json()["loaded_years"] == [year]
    assert not any(w.startswith(f"{year}年") for w in r.json()["warnings"])
    assert client.delete(f"/api/calendar/years/{year}", headers=city.headers("admin")).status_code == 200
    assert client.put("/api/calendar/years/99999", headers=city.headers("admin")).status_code == 422


def test_policies_per_kind_category_and_urgency(client: TestClient, city: City, services: Services) -> None:
    admin = city.headers("admin")
    r = client.put("/api/deadline-policies", json={"scope": "kind", "kind": "complaint", "sign_minutes": 120,
                                                   "reply_days": 13, "note": "本市投诉13个工作日"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["effective"]["kind:complaint"]["reply_days"] == 13
    assert preview(client, city, kind="complaint")["source"] == "default"
    assert preview(client, city, kind="complaint")["reply_due"].startswith("2026-12-18T09:00")
    r = client.put("/api/deadline-policies", json={"scope": "category", "category_id": city.ids["cat:chengguan"],
                                                   "sign_minutes": 60, "reply_days": 2}, headers=admin)
    assert r.status_code == 200
    sub = preview(client, city, kind="complaint", category_id=city.ids["cat:zhandao"])
    assert sub["source"] == "category" and sub["category"] == "15" and sub["reply_due"].startswith("2026-12-03")
    r = client.put("/api/deadline-policies", json={"scope": "urgent", "kind": "complaint", "sign_minutes": 15,
                                                   "reply_minutes": 720, "clock_time": True}, headers=admin)
    assert r.status_code == 200
    urgent = preview(client, city, kind="complaint", urgent="true", category_id=city.ids["cat:zhandao"])
    assert urgent["source"] == "urgent" and urgent["reply_due"].startswith("2026-12-01T21:00")
    assert preview(client, city, kind="help", urgent="true")["reply_due"].startswith("2026-12-02T09:00")
    bad = client.put("/api/deadline-policies", json={"scope": "category", "kind": "help", "category_id": 1,
                                                     "reply_days": 1}, headers=admin)
    assert bad.status_code == 422
    zero = client.put("/api/deadline-policies", json={"scope": "kind", "kind": "help"}, headers=admin)
    assert zero.status_code == 422
    # a real dispatch uses the policy table at once
    t = submit(client, city, kind="complaint")
    d = act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"]).json()
    dispatched = datetime.fromisoformat(d["dispatched_at"])
    due = datetime.fromisoformat(d["reply_due"])
    assert services.timing.calendar.working_time_between(dispatched, due) == 13 * \
        services.timing.calendar.working_day_length
    rows = client.get("/api/deadline-policies", headers=city.headers("agent")).json()["rows"]
    complaint = next(row for row in rows if row["scope_key"] == "kind:complaint")
    r = client.delete(f"/api/deadline-policies/{complaint['id']}", headers=admin)
    assert r.json()["effective"]["kind:complaint"]["reply_days"] == 5
