"""Open311 GeoReport v2 wired into the running app, driven as a civic app drives it: services from the category
tree, a form-encoded POST with an API key answered by a token, and the request as the public may see it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from channels.open311.settings import DEMO_OPEN311_KEYS
from hotline.models import Category, InboundMessage, Ticket, TicketAttachment
from hotline.services import Services
from hotline.worker import process_inbound_once
from tests.conftest import City, act, submit

V2 = "/open311/v2"
KEY = DEMO_OPEN311_KEYS["demo-client"]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CITIZEN = {"first_name": "女士", "last_name": "李", "email": "li@example.cn", "phone": "138-0000-1234"}
DESCRIPTION = "建设路口有人占道摆摊，堵住了盲道。联系电话 13800001234"


def post_request(client: TestClient, **fields: str) -> Any:
    form = {"api_key": KEY, "service_code": "1501", "address_string": "澄江街道建设路88号", "lat": "30.1",
            "long": "120.2", "description": DESCRIPTION, **CITIZEN, **fields}
    return client.post(f"{V2}/requests.json", data=form, headers=FORM)


def stored(services: Services) -> int:
    with services.sessions() as s:
        return s.scalar(select(func.count()).select_from(InboundMessage)) or 0


def request_of(client: TestClient, number: str) -> dict[str, Any]:
    r = client.get(f"{V2}/requests/{number}.json")
    assert r.status_code == 200, r.text
    (found,) = r.json()
    result: dict[str, Any] = found
    return result


def test_services_are_the_leaves_of_the_category_tree(client: TestClient, city: City) -> None:
    services = client.get(f"{V2}/services.json").json()
    assert [(s["service_code"], s["service_name"], s["group"]) for s in services] == [
        ("01", "城乡建设", "城乡建设"), ("1501", "占道经营", "城市管理")]
    assert services[1]["description"] == "城市管理 / 占道经营"
    assert client.get(f"{V2}/services/1501.json").json()["service_code"] == "1501"
    assert client.get(f"{V2}/services/15.json").status_code == 404  # not a leaf
    root = ET.fromstring(client.get(f"{V2}/services.xml").content)
    assert [s.findtext("service_code") for s in root.iter("service")] == ["01", "1501"]


def test_a_posted_request_answers_a_token_and_becomes_a_public_request(
    client: TestClient, city: City, services: Services
) -> None:
    r = post_request(client)
    assert r.status_code == 201, r.text
    (receipt,) = r.json()
    token = receipt["token"]
    assert "service_request_id" not in receipt
    assert client.get(f"{V2}/tokens/{token}.json").json() == [{"service_request_id": None, "token": token}]

    process_inbound_once(services)
    (answer,) = client.get(f"{V2}/tokens/{token}.json").json()
    number = answer["service_request_id"]
    with services.sessions() as s:
        ticket = s.scalars(select(Ticket)).one()
        category = s.get(Category, ticket.category_id)
    assert number == ticket.number and ticket.channel == "open311"
    assert category is not None and category.code == "1501"  # the service the citizen chose

    assert act(client, city, "dispatcher", ticket.id, "dispatch", unit_id=city.ids["unit:cjjd"]).status_code == 200
    with services.sessions() as s:
        dispatched = s.get(Ticket, ticket.id)
        assert dispatched is not None and dispatched.reply_due is not None
        reply_due = dispatched.reply_due
    found = request_of(client, number)
    assert (found["status"], found["service_code"], found["service_name"]) == ("open", "1501", "占道经营")
    assert found["agency_responsible"] == "澄江街道办事处"
    assert datetime.fromisoformat(found["expected_datetime"]) == reply_due.replace(microsecond=0)
    assert found["status_notes"] is None
    assert "13800001234" not in found["description"] and "占道摆摊" in found["description"]

    xml = client.get(f"{V2}/requests/{number}.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    request = ET.fromstring(xml.content).find("request")
    assert request is not None
    assert (request.findtext("service_request_id"), request.findtext("status")) == (number, "open")
    assert request.findtext("agency_responsible") == "澄江街道办事处"
    assert datetime.fromisoformat(request.findtext("expected_datetime") or "") == reply_due.replace(microsecond=0)

    for body in (xml.content.decode(), json.dumps(client.get(f"{V2}/requests.json").json(), ensure_ascii=False)):
        for private in ("李", "女士", "li@example.cn", "13800001234", "138-0000-1234", "建设路88号"):
            assert private not in body

    assert act(client, city, "cjjd", ticket.id, "sign").status_code == 200
    reply = "已联合城管清理占道摊位，盲道恢复畅通。"
    assert act(client, city, "cjjd", ticket.id, "reply", note=reply).status_code == 200
    found = request_of(client, number)
    assert (found["status"], found["status_notes"]) == ("closed", reply)
    listed = client.get(f"{V2}/requests.json", params={"status": "closed", "service_code": "1501"}).json()
    assert [r["service_request_id"] for r in listed] == [number]
    assert client.get(f"{V2}/requests.json", params={"status": "open"}).json() == []


def test_a_wrong_or_missing_api_key_is_refused_with_403_and_nothing_stored(
    client: TestClient, city: City, services: Services
) -> None:
    for key in ("not-a-key", ""):
        r = post_request(client, api_key=key)
        assert r.status_code == 403
        assert r.json()[0]["code"] == 403
    r = client.post(f"{V2}/requests.xml", data={"service_code": "1501", "address_string": "建设路"}, headers=FORM)
    assert r.status_code == 403 and ET.fromstring(r.content).tag == "errors"
    assert stored(services) == 0


def test_hostile_posts_get_4xx_with_nothing_stored(client: TestClient, city: City, services: Services) -> None:
    assert post_request(client, description="占道" * 2001).status_code == 400
    assert post_request(client, service_code="99").status_code == 404
    assert client.post(f"{V2}/requests.json", content=json.dumps({"api_key": KEY}),
                       headers={"Content-Type": "application/json"}).status_code == 400
    bad_utf8 = b"api_key=" + KEY.encode() + b"&service_code=1501&address_string=%E5%BB&description=x"
    assert client.post(f"{V2}/requests.json", content=bad_utf8, headers=FORM).status_code == 400
    huge = b"api_key=" + KEY.encode() + b"&description=" + b"a" * 70_000
    assert client.post(f"{V2}/requests.json", content=huge, headers=FORM).status_code == 413
    assert stored(services) == 0


def test_a_confidential_ticket_is_never_shown(client: TestClient, city: City, services: Services) -> None:
    secret = submit(client, city, "举报澄江街道某工地夜间违规施工", confidential=True)
    open_ = submit(client, city, "澄江街道建设路路灯不亮")
    assert client.get(f"{V2}/requests/{secret['number']}.json").status_code == 404
    assert client.get(f"{V2}/requests/{secret['number']}.xml").status_code == 404
    listed = client.get(f"{V2}/requests.json").json()
    assert [r["service_request_id"] for r in listed] == [open_["number"]]
    by_id = client.get(f"{V2}/requests.json", params={"service_request_id": f"{secret['number']},{open_['number']}"})
    assert [r["service_request_id"] for r in by_id.json()] == [open_["number"]]
    assert client.get(f"{V2}/tokens/{'0' * 32}.json").status_code == 404


def test_a_media_url_is_kept_as_a_link_and_never_fetched(client: TestClient, city: City, services: Services) -> None:
    assert post_request(client, media_url="https://example.org/photos/pavement.jpg").status_code == 201
    process_inbound_once(services)
    with services.sessions() as s:
        (ticket,) = s.scalars(select(Ticket))
        (row,) = s.scalars(select(TicketAttachment))
        assert (row.ticket_id, row.state, row.source) == (ticket.id, "linked", "https://example.org/photos/pavement.jpg")
    (shown,) = client.get(f"/api/tickets/{ticket.id}", headers=city.headers("agent")).json()["attachments"]
    assert shown["source_url"] == "https://example.org/photos/pavement.jpg" and shown["url"] is None
