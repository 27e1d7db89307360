"""Listing, filtering, directory, users and the knowledge base over the REST API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import City, act, submit


def test_healthz_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/intake" in paths and "/api/tickets/{ticket_id}/actions/{action}" in paths


def test_list_filters_by_status_unit_channel_text_and_overdue(client: TestClient, city: City) -> None:
    a = submit(client, city, "建设路占道经营严重")
    b = submit(client, city, "路灯不亮", channel="wechat")
    act(client, city, "agent", a["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    h = city.headers("agent")
    assert [t["id"] for t in client.get("/api/tickets?status=dispatched", headers=h).json()["items"]] == [a["id"]]
    assert client.get("/api/tickets?status=received&status=dispatched", headers=h).json()["total"] == 2
    assert [t["id"] for t in client.get(f"/api/tickets?unit_id={city.ids['unit:cjjd']}", headers=h).json()[
        "items"]] == [a["id"]]
    assert [t["id"] for t in client.get("/api/tickets?channel=wechat", headers=h).json()["items"]] == [b["id"]]
    assert [t["id"] for t in client.get("/api/tickets", params={"q": "路灯"}, headers=h).json()["items"]] == [b["id"]]
    assert client.get("/api/tickets", params={"q": "%"}, headers=h).json()["total"] == 0
    assert client.get("/api/tickets?overdue=true", headers=h).json()["total"] == 0
    assert client.get("/api/tickets?received_from=2000-01-01&received_to=2000-01-02", headers=h).json()["total"] == 0


def test_list_is_paginated(client: TestClient, city: City) -> None:
    for i in range(5):
        submit(client, city, f"第{i}件诉求")
    page = client.get("/api/tickets?page=2&page_size=2&sort=oldest", headers=city.headers("agent")).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert [t["text"] for t in page["items"]] == ["第2件诉求", "第3件诉求"]


def test_bad_query_parameters_are_422(client: TestClient, city: City) -> None:
    h = city.headers("agent")
    assert client.get("/api/tickets?page=0", headers=h).status_code == 422
    assert client.get("/api/tickets?page_size=5000", headers=h).status_code == 422
    assert client.get("/api/tickets?status=flying", headers=h).status_code == 422
    assert client.get("/api/tickets?received_from=yesterday", headers=h).status_code == 422
    assert client.get("/api/tickets/abc", headers=h).status_code == 422


def test_directory_lists_units_areas_and_categories(client: TestClient, city: City) -> None:
    h = city.headers("cjjd")
    units = client.get("/api/units", headers=h).json()
    assert {u["code"] for u in units} == {"mh-cgj", "mh-zjj", "mh-dh-cj"}
    assert {"id", "code", "name", "parent_id"} <= set(units[0])
    assert client.get(f"/api/units/{city.ids['unit:cgj']}", headers=h).json()["name"] == "明湖市城市管理局"
    assert client.get("/api/units/9999", headers=h).status_code == 404
    assert [c["name"] for c in client.get("/api/categories", headers=h).json()] == ["城乡建设", "城市管理", "占道经营"]
    assert len(client.get("/api/areas", headers=h).json()) == 4


def test_the_transition_table_is_published(client: TestClient, city: City) -> None:
    actions = {a["name"]: a for a in client.get("/api/actions", headers=city.headers("agent")).json()}
    assert actions["sign"]["from_states"] == ["dispatched"] and actions["sign"]["to_state"] == "signed"
    assert "unit_id" in actions["dispatch"]["fields"]


def test_only_admins_manage_users(client: TestClient, city: City) -> None:
    body = {"username": "agent3", "display_name": "新话务员", "password": "long-enough-1", "role": "agent"}
    assert client.post("/api/users", json=body, headers=city.headers("supervisor")).status_code == 403
    r = client.post("/api/users", json=body, headers=city.headers("admin"))
    assert r.status_code == 201 and r.json()["role"] == "agent"
    assert client.post("/api/users", json=body, headers=city.headers("admin")).status_code == 422
    handler = {**body, "username": "h1", "role": "unit_handler"}
    r = client.post("/api/users", json=handler, headers=city.headers("admin"))
    assert r.status_code == 422 and "unit_id" in r.json()["message"]
    assert client.post("/api/auth/login", json={"username": "agent3", "password": "long-enough-1"}).status_code == 200
    assert any(u["username"] == "agent3" for u in client.get("/api/users", headers=city.headers("admin")).json())


def test_knowledge_articles_crud_and_search(client: TestClient, city: City) -> None:
    h = city.headers("supervisor")
    body = {"title": "住房公积金提取办理流程", "body": "携带身份证、银行卡到市住房公积金管理中心窗口办理提取。",
            "keywords": ["公积金", "提取"]}
    assert client.post("/api/knowledge", json=body, headers=city.headers("agent")).status_code == 403
    created = client.post("/api/knowledge", json=body, headers=h)
    assert created.status_code == 201
    article_id = created.json()["id"]
    client.post("/api/knowledge", json={"title": "占道经营投诉处理", "body": "占道经营由城管部门负责。"}, headers=h)
    hits = client.get("/api/knowledge", params={"q": "公积金怎么提取"}, headers=city.headers("agent")).json()
    assert hits[0]["id"] == article_id
    updated = client.put(f"/api/knowledge/{article_id}", json={**body, "title": "公积金提取"}, headers=h)
    assert updated.json()["title"] == "公积金提取"
    assert client.delete(f"/api/knowledge/{article_id}", headers=h).status_code == 204
    assert client.get(f"/api/knowledge/{article_id}", headers=h).status_code == 404
    assert client.post("/api/knowledge", json={"title": "x", "body": ""}, headers=h).status_code == 422
    assert client.post("/api/knowledge", json={**body, "category_id": 999}, headers=h).status_code == 422


def test_the_openapi_document_describes_the_422_the_app_returns(client: TestClient, city: City) -> None:
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    error = doc["components"]["schemas"]["ErrorOut"]
    assert error["properties"]["detail"]["type"] == "string"
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            ref = operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorOut"), (method, path)
    body = client.get("/api/tickets?page=x", headers=city.headers("agent")).json()
    assert set(body) == {"detail", "message", "errors"} and isinstance(body["detail"], str)
    assert set(body["errors"][0]) == {"field", "message", "type", "reason"}
    assert body["errors"][0]["message"] == "须为整数" and body["errors"][0]["type"] == "int_parsing"


def test_responses_carry_nosniff(client: TestClient, city: City) -> None:
    for path in ("/static/js/api.js", "/api/tickets", "/healthz", "/", "/openapi.json", "/api/nothing-here"):
        assert client.get(path, headers=city.headers("agent")).headers["X-Content-Type-Options"] == "nosniff", path


def test_docs_use_swagger_ui_served_from_this_server(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "cdn" not in page.lower()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert "/static/vendor/swagger-ui/swagger-ui.css" in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"):
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200, asset
    assert client.get("/redoc").status_code == 404
