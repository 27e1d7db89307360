"""Whatever a hostile or clumsy client sends gets a 4xx with a reason, never a 500, and nothing half-written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hotline.models import Ticket, TicketEvent
from hotline.services import Services
from tests.conftest import City, act, submit

BIG = 10**20


def no_rows(services: Services) -> bool:
    with services.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Ticket)) or 0) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'"text"',
        b"null",
        b'{"channel": "phone", "text": "a\\u0000b"}',
        b'{"channel": "phone", "text": "\\ud800"}',
        b'{"channel": "phone", "text": "ok", "citizen": "13800001234"}',
        b'{"channel": "phone", "text": "ok", "citizen": {"name": "\\u0000"}}',
        b"\xff\xfe not utf-8",
    ],
)
def test_malformed_intake_bodies_are_422(client: TestClient, city: City, services: Services, raw: bytes) -> None:
    r = client.post("/api/intake", content=raw, headers={**city.headers("agent"), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]
    assert no_rows(services)


def test_form_data_instead_of_json_is_422(client: TestClient, city: City) -> None:
    r = client.post("/api/intake", data={"channel": "phone", "text": "x"}, headers=city.headers("agent"))
    assert r.status_code == 422


@pytest.mark.parametrize("path", [f"/api/tickets/{BIG}", "/api/tickets/-1", f"/api/units/{BIG}",
                                  f"/api/knowledge/{BIG}", f"/api/tickets?unit_id={BIG}", "/api/tickets?page=1.5"])
def test_out_of_range_ids_are_4xx(client: TestClient, city: City, path: str) -> None:
    r = client.get(path, headers=city.headers("agent"))
    assert r.status_code in (404, 422), r.text


def test_out_of_range_ids_in_action_bodies_are_422(client: TestClient, city: City, services: Services) -> None:
    t = submit(client, city)
    for body in ({"unit_id": BIG}, {"unit_id": 1, "co_unit_ids": [BIG]}):
        assert act(client, city, "agent", t["id"], "dispatch", **body).status_code == 422
    assert act(client, city, "agent", t["id"], "merge", parent_id=BIG).status_code == 422
    assert act(client, city, "agent", t["id"], "comment", note="a\u0000b").status_code == 422
    r = client.post(f"/api/tickets/{t['id']}/actions/comment", content=b"[1,2]",
                    headers={**city.headers("agent"), "Content-Type": "application/json"})
    assert r.status_code == 422
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(TicketEvent)) == 1


def test_other_auth_schemes_and_garbage_tokens_are_401(client: TestClient, city: City) -> None:
    for header in ("Basic YWdlbnQ6YWdlbnQxMjM=", "Bearer", "Bearer " + "x" * 5000, "Token abc"):
        assert client.get("/api/tickets", headers={"Authorization": header}).status_code == 401


def test_login_with_wrong_types_is_422(client: TestClient) -> None:
    assert client.post("/api/auth/login", json={"username": ["a"], "password": 1}).status_code == 422
    assert client.post("/api/auth/login", json={}).status_code == 422
