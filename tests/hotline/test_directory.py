"""Directory admin: areas, units, catalogue rules, route explanations, CSV/Excel import and export."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from hotline.models import Area, CatalogueRule, Unit
from hotline.services import Services
from tests.conftest import City

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class CountingSuggester:
    """Stands in for CitySuggester: only ``refresh`` matters here."""

    def __init__(self) -> None:
        self.refreshed = 0

    def refresh(self) -> None:
        self.refreshed += 1


def count(services: Services, model: Any) -> int:
    with services.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def route(client: TestClient, city: City, category: str, area: str | None) -> dict[str, Any]:
    params = {"category_id": city.ids[f"cat:{category}"]}
    if area:
        params["area_id"] = city.ids[f"area:{area}"]
    r = client.get("/api/route", params=params, headers=city.headers("dispatcher"))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_route_explains_the_rule_and_the_rules_it_beat(client: TestClient, city: City) -> None:
    r = route(client, city, "zhandao", "cj")
    assert r["unit"]["id"] == city.ids["unit:cjjd"]
    assert r["co_units"][0]["id"] == city.ids["unit:cgj"]
    assert r["source"] == "rule" and "澄江街道" in r["explanation"]
    assert [c["used"] for c in r["candidates"]] == [True, False]  # 1501×澄江 beats 15×明湖市
    assert r["candidates"][1]["lead_code"] == "mh-cgj"
    elsewhere = route(client, city, "zhandao", "xs")
    assert elsewhere["unit"]["id"] == city.ids["unit:cgj"] and elsewhere["area_path"] == ["mh", "mh-xs"]
    assert client.get("/api/route", params={"category_id": 99999}, headers=city.headers("agent")).status_code == 404
    assert client.get("/api/route", params={"category_id": 1}, headers=city.headers("cjjd")).status_code == 403


def test_rule_changes_route_at_once_and_refresh_the_suggester(client: TestClient, city: City,
                                                              services: Services) -> None:
    fake = CountingSuggester()
    services.suggester = fake  # type: ignore[assignment]
    body = {"category_id": city.ids["cat:zhandao"], "area_id": city.ids["area:xs"],
            "lead_unit_id": city.ids["unit:zjj"], "note": "西山区占道由住建局牵头"}
    assert client.post("/api/catalogue", json=body, headers=city.headers("supervisor")).status_code == 403
    r = client.post("/api/catalogue", json=body, headers=city.headers("admin"))
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    assert fake.refreshed == 1
    explained = route(client, city, "zhandao", "xs")
    assert explained["rule_id"] == rule_id and "住建局牵头" in explained["explanation"]
    again = client.post("/api/catalogue", json=body, headers=city.headers("admin"))
    assert again.status_code == 409 and again.json()["rule_id"] == rule_id
    bad = client.post("/api/catalogue", json={**body, "co_unit_ids": [body["lead_unit_id"]]},
                      headers=city.headers("admin"))
    assert bad.status_code == 422
    assert client.delete(f"/api/catalogue/{rule_id}", headers=city.headers("admin")).json()["active"] is False
    assert route(client, city, "zhandao", "xs")["unit"]["id"] == city.ids["unit:cgj"]
    assert fake.refreshed == 2
    listed = client.get("/api/catalogue", headers=city.headers("dispatcher")).json()
    assert len(listed["rules"]) == 3 and listed["conflicts"] == []


def test_units_and_areas_are_edited_and_deactivated_with_checks(client: TestClient, city: City) -> None:
    admin = city.headers("admin")
    street = {"code": "mh-xs-hp", "name": "湖畔街道", "level": "street", "parent_id": city.ids["area:xs"]}
    r = client.post("/api/areas", json=street, headers=admin)
    assert r.status_code == 201, r.text
    street_id = r.json()["id"]
    wrong = client.post("/api/areas", json={**street, "code": "x1", "parent_id": city.ids["area:mh"]}, headers=admin)
    assert wrong.status_code == 422 and "one level up" in wrong.json()["message"]
    assert client.post("/api/areas", json=street, headers=admin).status_code == 409
    community = {"code": "mh-xs-hp-1", "name": "湖畔一社区", "level": "community", "parent_id": street_id}
    assert client.post("/api/areas", json=community, headers=admin).status_code == 201
    assert client.delete(f"/api/areas/{street_id}", headers=admin).status_code == 409  # active community below

    unit = {"code": "mh-xs-hp", "name": "湖畔街道办事处", "kind": "street_office", "area_id": street_id}
    r = client.post("/api/units", json=unit, headers=admin)
    assert r.status_code == 201
    unit_id = r.json()["id"]
    loop = client.put(f"/api/units/{unit_id}", json={**unit, "parent_id": unit_id}, headers=admin)
    assert loop.status_code == 422
    assert client.post("/api/units", json={**unit, "kind": "castle"}, headers=admin).status_code == 422
    # a unit that still leads catalogue rules cannot quietly disappear
    r = client.delete(f"/api/units/{city.ids['unit:cgj']}", headers=admin)
    assert r.status_code == 409 and r.json()["rule_ids"]
    assert client.delete(f"/api/units/{unit_id}", headers=admin).json()["active"] is False
    assert client.post("/api/units", json=unit, headers=city.headers("dispatcher")).status_code == 403


def workbook(rows: dict[str, list[list[Any]]]) -> bytes:
    wb = Workbook()
    first = True
    for title, data in rows.items():
        sheet = wb.active if first else wb.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = title
        for row in data:
            sheet.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


NEW_DIRECTORY = {
    "地区": [["编码", "名称", "层级", "上级编码", "别名"],
             ["mh-xs-hp-1", "湖畔一社区", "community", "mh-xs-hp", ""],  # parent defined below: fine
             ["mh-xs-hp", "湖畔街道", "street", "mh-xs", "湖畔、湖畔街"]],
    "单位": [["编码", "名称", "类型", "服务区域编码", "上级单位编码"],
             ["mh-xs-hp", "湖畔街道办事处", "street_office", "mh-xs-hp", ""],
             ["mh-xs-hp-1", "湖畔一社区居委会", "community", "mh-xs-hp-1", "mh-xs-hp"]],
    "派单目录": [["分类编码", "区域编码", "主办单位编码", "协办单位编码", "备注"],
                 ["1501", "mh-xs-hp", "mh-xs-hp", "mh-cgj", "湖畔街道属地管理"]],
}


def test_excel_import_with_one_bad_row_is_refused_whole_naming_the_row(client: TestClient, city: City,
                                                                       services: Services) -> None:
    before = (count(services, Area), count(services, Unit), count(services, CatalogueRule))
    bad = {k: [list(r) for r in v] for k, v in NEW_DIRECTORY.items()}
    bad["单位"].append(["mh-xs-hp-2", "湖畔二社区居委会", "community", "no-such-area", ""])  # row 4
    r = client.post("/api/directory/import.xlsx", content=workbook(bad), headers={**city.headers("admin"),
                                                                                  "Content-Type": XLSX})
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors == [{"sheet": "单位", "kind": "units", "row": 4, "message": "服务区域编码“no-such-area”不存在"}]
    assert "第4行" in r.json()["detail"]
    assert (count(services, Area), count(services, Unit), count(services, CatalogueRule)) == before


def test_excel_import_dry_run_then_real_then_export_round_trip(client: TestClient, city: City,
                                                               services: Services) -> None:
    fake = CountingSuggester()
    services.suggester = fake  # type: ignore[assignment]
    headers = {**city.headers("admin"), "Content-Type": XLSX}
    data = workbook(NEW_DIRECTORY)
    dry = client.post("/api/directory/import.xlsx?dry_run=true", content=data, headers=headers)
    assert dry.status_code == 200 and dry.json()["created"] == {"areas": 2, "units": 2, "rules": 1}
    assert count(services, Area) == 4 and fake.refreshed == 0
    real = client.post("/api/directory/import.xlsx", content=data, headers=headers)
    assert real.json()["created"] == {"areas": 2, "units": 2, "rules": 1} and fake.refreshed == 1
    with services.sessions() as s:
        community = s.scalar(select(Unit).where(Unit.code == "mh-xs-hp-1"))
        street = s.scalar(select(Unit).where(Unit.code == "mh-xs-hp"))
        area = s.scalar(select(Area).where(Area.code == "mh-xs-hp"))
        assert community is not None and street is not None and area is not None
        assert community.parent_id == street.id and area.aliases == ["湖畔", "湖畔街"]
        hp = area.id
    r = client.get("/api/route", params={"category_id": city.ids["cat:zhandao"], "area_id": hp},
                   headers=city.headers("dispatcher"))
    assert r.json()["unit"]["name"] == "湖畔街道办事处"

    exported = client.get("/api/directory/export.xlsx", headers=city.headers("admin"))
    assert exported.status_code == 200
    wb = load_workbook(io.BytesIO(exported.content))
    assert wb.sheetnames == ["地区", "单位", "派单目录"]
    assert [c.value for c in wb["单位"][1]][:4] == ["编码", "名称", "简称", "类型"]
    again = client.post("/api/directory/import.xlsx", content=exported.content, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["created"] == {"areas": 0, "units": 0, "rules": 0}
    assert again.json()["updated"] == {"areas": 6, "units": 5, "rules": 4}
    assert count(services, CatalogueRule) == 4


def test_csv_import_accepts_gb18030_and_reports_rows(client: TestClient, city: City, services: Services) -> None:
    text = "编码,名称,类型,服务区域编码\nmh-gas,明湖燃气公司,enterprise,mh\nmh-water,明湖水务集团,enterprize,mh\n"
    headers = {**city.headers("admin"), "Content-Type": "text/csv"}
    r = client.post("/api/directory/import.csv?kind=units", content=text.encode("gb18030"), headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["row"] == 3
    assert count(services, Unit) == 3
    fixed = text.replace("enterprize", "enterprise").encode("gb18030")
    r = client.post("/api/directory/import.csv?kind=units", content=fixed, headers=headers)
    assert r.status_code == 200 and r.json()["created"]["units"] == 2
    csv_out = client.get("/api/directory/export.csv?kind=units", headers=city.headers("admin"))
    assert csv_out.content.startswith(b"\xef\xbb\xbf") and "明湖水务集团" in csv_out.content.decode("utf-8-sig")
    junk = client.post("/api/directory/import.xlsx", content=b"not a workbook",
                       headers={**city.headers("admin"), "Content-Type": XLSX})
    assert junk.status_code == 422
    unknown_column = "编码,名称,颜色\nx,y,red\n".encode()
    r = client.post("/api/directory/import.csv?kind=areas", content=unknown_column, headers=headers)
    assert r.status_code == 422 and "颜色" in r.json()["detail"]


def test_no_rule_falls_back_to_the_city_bureau_of_the_category_then_to_the_queue(
    client: TestClient, city: City
) -> None:
    admin = city.headers("admin")
    rules = client.get("/api/catalogue", headers=admin).json()["rules"]
    city_rule = next(r for r in rules if r["category_id"] == city.ids["cat:chengguan"])
    assert client.delete(f"/api/catalogue/{city_rule['id']}", headers=admin).status_code == 200
    # 城市管理 now has rules only for 占道经营: one at 澄江街道 (street office) and one for 东湖区 led by 市城管局.
    body = {"category_id": city.ids["cat:zhandao"], "area_id": city.ids["area:dh"],
            "lead_unit_id": city.ids["unit:cgj"]}
    assert client.post("/api/catalogue", json=body, headers=admin).status_code == 201
    uncovered = route(client, city, "chengguan", "xs")  # 城市管理 × 西山区: no rule covers it
    assert uncovered["source"] == "fallback" and uncovered["unit"]["id"] == city.ids["unit:cgj"]
    assert "兜底" in uncovered["explanation"]
    rules = client.get("/api/catalogue", headers=admin).json()["rules"]
    for rule in rules:
        if rule["category_id"] == city.ids["cat:zhandao"] and rule["area_id"] == city.ids["area:dh"]:
            client.delete(f"/api/catalogue/{rule['id']}", headers=admin)
    queued = route(client, city, "chengguan", "xs")  # no city bureau leads any 城市管理 rule any more
    assert queued["source"] == "queue" and queued["unit"] is None
