"""Out-of-range times, ids and files get a 4xx a person can act on (Chinese ``detail``, the machine ``type`` and
English ``reason`` per error), never a 500, and nothing is written."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select

from hotline.models import SupervisionOrder, Ticket
from hotline.services import Services
from tests.conftest import City, act, submit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def refused(r: Any, status: int = 422) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["detail"] and any("\u4e00" <= c <= "\u9fff" for c in body["detail"]), body
    return body


def count(services: Services, model: Any) -> int:
    with services.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("query", ["received_from=0001-01-01", "received_to=9999-12-31",
                                   "received_from=1999-12-31", "received_to=2101-01-01"])
def test_ticket_list_dates_outside_the_window_are_422(client: TestClient, city: City, query: str) -> None:
    body = refused(client.get(f"/api/tickets?{query}", headers=city.headers("agent")))
    assert body["errors"][0]["type"] == "time_out_of_range"
    assert "2000-01-01" in body["detail"] and body["errors"][0]["reason"]
    assert client.get("/api/tickets?received_from=2000-01-01&received_to=2100-12-31",
                      headers=city.headers("agent")).status_code == 200


@pytest.mark.parametrize("path", ["/api/scorecards", "/api/scorecards.xlsx", "/api/scorecards/{unit}",
                                  "/api/scorecards/{unit}/tickets?figure=overdue&"])
def test_scorecard_periods_outside_the_window_are_422(client: TestClient, city: City, path: str) -> None:
    base = path.format(unit=city.ids["unit:cjjd"])
    sep = "" if base.endswith("&") else "?"
    for query in ("from=0001-01-01&to=0001-01-31", "from=9999-12-01&to=9999-12-31"):
        r = client.get(f"{base}{sep}{query}", headers=city.headers("supervisor"))
        assert refused(r)["errors"][0]["field"] in ("from", "to")


@pytest.mark.parametrize("ids", ["9223372036854775808", "2147483648", "0", "-1", "1,99999999999999999999"])
def test_desk_deadline_ids_out_of_range_are_422(client: TestClient, city: City, ids: str) -> None:
    body = refused(client.get(f"/api/desk/deadlines?ids={ids}", headers=city.headers("agent")))
    assert body["field"] == "ids"


@pytest.mark.parametrize("received_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                         "0001-01-01T00:00:00Z", "9999-01-01T00:00:00+08:00",
                                         "1999-12-31T12:00:00+00:00"])
def test_intake_refuses_times_outside_the_window(client: TestClient, city: City, services: Services,
                                                 received_at: str) -> None:
    r = client.post("/api/intake", json={"channel": "phone", "text": "路灯不亮", "received_at": received_at},
                    headers=city.headers("agent"))
    assert refused(r)["errors"][0]["field"] == "received_at"
    assert count(services, Ticket) == 0
    ok = client.post("/api/intake", json={"channel": "phone", "text": "路灯不亮",
                                          "received_at": "2026-11-22T09:30:00+08:00"}, headers=city.headers("agent"))
    assert ok.status_code == 201


@pytest.mark.parametrize("due_at", ["9999-12-31T17:00:00+08:00", "0001-01-01T00:00:00+08:00",
                                    "2001-01-01T00:00:00+08:00"])
def test_a_supervision_due_date_must_be_plausible_and_not_long_past(client: TestClient, city: City, services: Services,
                                                            due_at: str) -> None:
    t = submit(client, city)
    act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    r = act(client, city, "supervisor", t["id"], "supervise", note="请尽快办理", due_at=due_at)
    assert refused(r)["detail"]
    assert count(services, SupervisionOrder) == 0
    for due in (datetime.now(UTC) + timedelta(days=3), datetime.now(UTC) - timedelta(hours=2)):
        r = act(client, city, "supervisor", t["id"], "supervise", note="请尽快办理", due_at=due.isoformat())
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("sub", [str(2**63), str(2**31), "0", "-5", "1e9", "abc"])
def test_a_token_whose_subject_is_no_id_is_401(client: TestClient, services: Services, sub: str) -> None:
    now = int(time.time())
    token = jwt.encode({"sub": sub, "iat": now, "exp": now + 600}, services.settings.secret_key, algorithm="HS256")
    r = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text


def test_the_deadline_preview_refuses_times_outside_the_window_and_non_staff(client: TestClient, city: City) -> None:
    for start in ("0001-01-01T00:00:00%2B14:00", "9999-12-31T00:00:00Z"):
        refused(client.get(f"/api/deadline-policies/preview?start={start}", headers=city.headers("supervisor")))
    assert client.get("/api/deadline-policies/preview", headers=city.headers("supervisor")).status_code == 200
    assert client.get("/api/deadline-policies/preview", headers=city.headers("cjjd")).status_code == 403


@pytest.mark.parametrize("path", ["/api/calendar/overrides/0001-01-01", "/api/calendar/overrides/9999-12-31"])
def test_calendar_days_outside_the_window_are_422(client: TestClient, city: City, path: str) -> None:
    refused(client.put(path, json={"kind": "holiday", "note": "x"}, headers=city.headers("admin")))


# --- files ---------------------------------------------------------------------------------------------------


def _units_workbook() -> bytes:
    wb = Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.title = "单位"
    sheet.append(["编码", "名称", "类型", "服务区域编码"])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _rewrite(data: bytes, change: dict[str, Any]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            content = source.read(name)
            target.writestr(name, change[name](content) if name in change else content)
    return out.getvalue()


def test_an_xlsx_declaring_an_entity_is_refused(client: TestClient, city: City) -> None:
    laughs = b'<!DOCTYPE Types [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    data = _rewrite(_units_workbook(), {
        "[Content_Types].xml": lambda xml: xml.replace(b"<Types", laughs + b"<Types", 1),
    })
    r = client.post("/api/directory/import.xlsx", content=data,
                    headers={**city.headers("admin"), "Content-Type": XLSX})
    assert "DOCTYPE" in refused(r)["detail"]


def test_an_xlsx_announcing_two_million_rows_is_refused_before_reading_them(client: TestClient, city: City) -> None:
    rows = b"".join(b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>x</t></is></c></row>' % (i, i)
                    for i in range(2, 200_002))
    data = _rewrite(_units_workbook(), {
        "xl/worksheets/sheet1.xml": lambda xml: xml.replace(b'ref="A1:D1"', b'ref="A1:D2000000"')
        .replace(b"</sheetData>", rows + b"</sheetData>"),
    })
    started = time.monotonic()
    r = client.post("/api/directory/import.xlsx", content=data,
                    headers={**city.headers("admin"), "Content-Type": XLSX})
    assert "分批" in refused(r)["detail"]
    assert time.monotonic() - started < 2.0


def test_a_sheet_of_blank_rows_stops_at_the_row_limit(client: TestClient, city: City) -> None:
    text = "编码,名称,类型,服务区域编码\n" + ",,,\n" * 60_000
    r = client.post("/api/directory/import.csv?kind=units", content=text.encode(), headers=city.headers("admin"))
    assert "50000" in refused(r)["detail"]


def test_an_xlsx_that_inflates_far_beyond_its_size_is_refused(client: TestClient, city: City) -> None:
    out = io.BytesIO(_units_workbook())
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as target:
        target.writestr("xl/media/filler.xml", b" " * (10 * 1024 * 1024))  # 10 MiB of spaces: about 10 KiB zipped
    r = client.post("/api/directory/import.xlsx", content=out.getvalue(),
                    headers={**city.headers("admin"), "Content-Type": XLSX})
    assert "过大" in refused(r)["detail"]


# --- bodies ----------------------------------------------------------------------------------------------------


def test_a_body_without_content_length_over_the_limit_is_413(client: TestClient, city: City,
                                                              services: Services) -> None:
    limit = services.settings.max_body_bytes

    def chunks() -> Any:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = client.post("/api/intake", content=chunks(), headers={**city.headers("agent"),
                                                              "Content-Type": "application/json"})
    assert r.status_code == 413 and "过大" in r.json()["detail"]

    def small() -> Any:
        yield b'{"channel": "phone", '
        yield '"text": "路灯不亮"}'.encode()

    r = client.post("/api/intake", content=small(), headers={**city.headers("agent"),
                                                             "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
