"""Every route of the app, called by a unit handler of another unit, leaks nothing of a ticket it may not see.

The routes are enumerated from the app itself (``app.routes``, every method, the WebSocket included), not listed by
hand: a route added tomorrow is called too. Path parameters are filled from the other unit's ticket (its id, number,
stored message, an action on it) and compared with a missing one: the answer must be the same (404 like a missing
id, so units cannot probe) or a refusal by role. No answer may contain the other ticket's number, text, notes or
citizen. A path parameter this test does not know how to fill fails it: add it to ``PATH_VALUES`` (with the other
unit's value where it names ticket-scoped data) before the route ships.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route, WebSocketRoute

from channels.phone.settings import PhoneSettings
from hotline.app import create_app
from hotline.fields import MAX_ID
from hotline.models import TicketAttachment
from hotline.services import Services
from hotline.workflow import ACTIONS
from tests.conftest import City, act, submit
from tests.processes import CHANNEL_HEADERS

SECRET_TEXT = "鼓楼巷十七号院里的化粪池漫出来了"  # the other unit's ticket, word for word
SECRET_NOTE = "请住建局今天下午务必到鼓楼巷现场"  # a supervision note on it
SECRET_CITIZEN = ("欧阳守秘", "13987654321")
CONFIDENTIAL_TEXT = "我举报临湖小区物业经理收受回扣"  # a confidential (保密) report of the same unit
CONFIDENTIAL_CITIZEN = ("司马隐名", "13711112222")
MISSING_NUMBER = "20991231999999"

#: routes the public may call by design, answering what the public may see of a non-confidential ticket (Open311
#: GeoReport; the citizen's own lookup needs the phone's last four digits): there the ticket's text may appear,
#: never a citizen or anything of a confidential ticket
PUBLIC_BY_DESIGN = {("GET", "/open311/v2/requests.{fmt}"), ("GET", "/open311/v2/requests/{name}")}
#: routes without a path or query parameter to fill and without ticket data: pages and static files
NO_TICKET_DATA = {"/static"}


@dataclass
class Other:
    """What the unit under test (市城管局, ``cgj``) must never learn: the 住建局's (``zjj``) tickets."""

    ticket_id: int
    number: str
    version: int
    inbound_id: int
    confidential_id: int
    confidential_number: str
    attachment_id: int  # a photo stored with the other unit's ticket

    def forbidden(self, public_route: bool) -> list[str]:
        strings = [*SECRET_CITIZEN, *CONFIDENTIAL_CITIZEN, CONFIDENTIAL_TEXT, self.confidential_number, SECRET_NOTE]
        if not public_route:
            strings += [SECRET_TEXT, self.number]
        return strings


@pytest.fixture
def app(services: Services) -> FastAPI:
    """The app with every channel mounted (the phone channel is off by default)."""
    settings = services.settings.model_copy(
        update={"phone": PhoneSettings(_env_file=None, demo=True, phone_enabled=True)}  # type: ignore[call-arg]
    )
    services.settings = settings
    return create_app(settings, services)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def other(client: TestClient, city: City, services: Services) -> Other:
    from hotline import inbound

    accepted = client.post("/api/inbound", headers=CHANNEL_HEADERS, json={
        "channel": "web", "external_id": "isolation-1", "text": SECRET_TEXT,
        "citizen": {"name": SECRET_CITIZEN[0], "phone": SECRET_CITIZEN[1]}})
    assert accepted.status_code == 202, accepted.text
    inbound.process_pending(services.sessions, services.suggester, services.timing)
    tickets = client.get("/api/tickets", headers=city.headers("agent")).json()["items"]
    [ticket] = [t for t in tickets if t["text"] == SECRET_TEXT]
    assert act(client, city, "dispatcher", ticket["id"], "dispatch", unit_id=city.ids["unit:zjj"]).status_code == 200
    assert act(client, city, "zjj", ticket["id"], "sign").status_code == 200
    assert act(client, city, "supervisor", ticket["id"], "supervise", note=SECRET_NOTE,
               due_at="2099-01-01T09:00:00+08:00").status_code == 200
    confidential = submit(client, city, CONFIDENTIAL_TEXT, confidential=True,
                          citizen={"name": CONFIDENTIAL_CITIZEN[0], "phone": CONFIDENTIAL_CITIZEN[1]})
    assert act(client, city, "dispatcher", confidential["id"], "dispatch",
               unit_id=city.ids["unit:zjj"]).status_code == 200
    submit(client, city, "澄江街道建设路有人占道经营")  # the unit's own kind of traffic, so lists are not empty
    detail = client.get(f"/api/tickets/{ticket['id']}", headers=city.headers("zjj")).json()
    with services.sessions() as session, session.begin():
        photo = TicketAttachment(ticket_id=ticket["id"], channel="web", kind="image", state="stored",
                                 content_type="text/plain", content=SECRET_TEXT.encode(), size=1, sha256="0" * 64)
        session.add(photo)
        session.flush()
        attachment_id = photo.id
    return Other(ticket_id=ticket["id"], number=ticket["number"], version=detail["version"],
                 inbound_id=accepted.json()["inbound_id"], confidential_id=confidential["id"],
                 confidential_number=confidential["number"], attachment_id=attachment_id)


def every_route(routes: list[Any]) -> Iterator[Any]:
    """The app's routes, flattened (FastAPI keeps included routers as nested route groups)."""
    for route in routes:
        nested = getattr(route, "effective_candidates", None)
        if callable(nested):
            yield from every_route(nested())
        else:
            yield route


def path_values(other: Other, city: City) -> dict[str, tuple[list[str], str]]:
    """Per path parameter: the values naming the other unit's data, and the value of something missing."""
    forged = "0" * 32
    return {
        "ticket_id": ([str(other.ticket_id), str(other.confidential_id)], str(MAX_ID)),
        "inbound_id": ([str(other.inbound_id)], str(MAX_ID)),
        # the phone queue (/api/phone/queue/{call_id}/…): agents only, a unit is refused by role
        "call_id": (["1"], str(MAX_ID)),
        "attachment_id": ([str(other.attachment_id)], str(MAX_ID)),
        "number": ([other.number, other.confidential_number], MISSING_NUMBER),
        # a receipt is signed; a unit can only guess one for the other ticket's stored message
        "receipt": ([f"{other.inbound_id}.{forged}"], f"{MAX_ID}.{forged}"),
        "name": ([f"{other.confidential_number}.json", f"{other.inbound_id}.json"], f"{MISSING_NUMBER}.json"),
        # not ticket-scoped: the directory and calendar (admins edit them; everyone may read the directory)
        "unit_id": ([str(city.ids["unit:zjj"])], str(MAX_ID)),
        "user_id": ([str(city.ids["user:zjj"])], str(MAX_ID)),
        "area_id": ([str(city.ids["area:dh"])], str(MAX_ID)),
        "rule_id": (["1"], str(MAX_ID)),
        "policy_id": (["1"], str(MAX_ID)),
        "article_id": (["1"], str(MAX_ID)),
        "day": (["2026-10-01"], "2099-12-31"),
        "year": (["2026"], "2099"),
        "board": (["wenzheng"], "no-such-board"),
        "channel": (["wechat"], "no-such-channel"),  # the admin channels tab: no ticket data
        "fmt": (["json"], "json"),
        "action": (sorted(ACTIONS), "no-such-action"),
    }


def query_values(other: Other, city: City) -> dict[str, str]:
    """Query parameters that could select the other unit's tickets, filled to try."""
    return {"ids": f"{other.ticket_id},{other.confidential_id}", "ticket_id": str(other.ticket_id),
            "unit_id": str(city.ids["unit:zjj"]), "unit": str(city.ids["unit:zjj"]), "q": "鼓楼巷",
            "text": SECRET_TEXT, "number": other.number, "phone_last4": "0000"}


def stem(value: str) -> str:
    """A path value without its format suffix (``N.json`` is echoed as ``N``)."""
    return value.removesuffix(".json")


def fill(path: str, params: dict[str, str]) -> str:
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    return path


def parameters_of(path: str) -> list[str]:
    import re

    return re.findall(r"{(\w+)(?::\w+)?}", path)


def assert_no_leak(text: str, other: Other, where: str, public_route: bool = False) -> None:
    for secret in other.forbidden(public_route):
        assert secret not in text, f"{where} shows a unit {secret!r} of another unit's ticket"


def test_every_route_as_another_units_handler_leaks_nothing(app: FastAPI, client: TestClient, city: City,
                                                           other: Other) -> None:
    unit = city.headers("cgj")
    values = path_values(other, city)
    queries = query_values(other, city)
    schema = app.openapi()["paths"]
    body: dict[str, Any] = {"version": other.version, "note": "看看", "unit_id": city.ids["unit:cgj"]}
    checked: list[str] = []
    websockets = 0
    for route in every_route(list(app.routes)):
        path = getattr(route, "path", None)
        if isinstance(route, Mount) and path in NO_TICKET_DATA:
            continue
        if isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
            websockets += 1
            continue  # the WebSocket has its own test below
        assert isinstance(path, str) and (isinstance(route, Route) or getattr(route, "methods", None)), (
            f"a route this test cannot call: {route!r}")
        params = parameters_of(path)
        unknown = [p for p in params if p not in values]
        assert not unknown, f"{path}: no value for {unknown}; add it to PATH_VALUES (another unit's, if ticket data)"
        for method in sorted(set(route.methods or ()) - {"HEAD", "OPTIONS"}):
            operation = schema.get(path, {}).get(method.lower(), {})
            query = {p["name"]: queries[p["name"]] for p in operation.get("parameters", [])
                     if p["in"] == "query" and p["name"] in queries}
            public_route = (method, path) in PUBLIC_BY_DESIGN
            combos: list[dict[str, str]] = [{}]
            for name in params:
                combos = [{**c, name: v} for c in combos for v in values[name][0]]
            for combo in combos:
                url = fill(path, combo)
                kwargs: dict[str, Any] = {"headers": unit, "params": query}
                if method in ("POST", "PUT", "PATCH"):
                    kwargs["json"] = body
                answer = client.request(method, url, **kwargs)
                where = f"{method} {url}"
                # the readiness probe says 503 by design here: this test's services load no classifier model
                not_ready = path == "/readyz" and answer.status_code == 503
                assert answer.status_code < 500 or not_ready, f"{where}: {answer.status_code} {answer.text[:300]}"
                echoed = answer.text
                for value in combo.values():  # repeating what was asked ("ticket N not found") tells nothing
                    echoed = echoed.replace(stem(value), "")
                assert_no_leak(echoed, other, where, public_route)
                scoped = [n for n in combo if n in ("ticket_id", "inbound_id", "number", "receipt", "name")]
                if scoped and answer.status_code not in (401, 403, 405):
                    missing = fill(path, {**combo, **{n: values[n][1] for n in scoped}})
                    absent = client.request(method, missing, **{**kwargs})
                    said = answer.text
                    for n in scoped:  # the refusal may name the id it was asked for, nothing more
                        said = said.replace(stem(combo[n]), stem(values[n][1]))
                    assert (answer.status_code, said) == (absent.status_code, absent.text), (
                        f"{where} answers {answer.status_code} {answer.text[:200]}, a missing one "
                        f"{absent.status_code} {absent.text[:200]}: a unit can tell the other ticket exists")
                checked.append(where)
    assert websockets == 1, "a WebSocket route this test does not cover"
    assert any("/actions/" in c for c in checked) and any("/api/tickets/" in c for c in checked)
    assert len(checked) > 100


def test_the_owning_unit_sees_what_the_other_one_must_not(client: TestClient, city: City, other: Other) -> None:
    """The control: the strings the leak test looks for are really in the answers of the unit that owns them."""
    own = client.get(f"/api/tickets/{other.ticket_id}", headers=city.headers("zjj"))
    assert own.status_code == 200 and SECRET_TEXT in own.text and other.number in own.text
    assert SECRET_NOTE in client.get("/api/supervision", headers=city.headers("zjj"),
                                     params={"ticket_id": other.ticket_id}).text
    assert other.confidential_number in client.get("/api/tickets", headers=city.headers("zjj")).text


def test_the_websocket_replays_nothing_of_another_units_tickets(client: TestClient, city: City,
                                                               other: Other) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"token": city.tokens["cgj"], "last_event_id": 0})
        hello = ws.receive_json()
        assert hello["type"] == "hello"
        replayed = [ws.receive_json() for _ in range(hello["replay"])]
        assert act(client, city, "supervisor", other.ticket_id, "remind", note=SECRET_NOTE).status_code == 200
        ws.send_json({"type": "ping", "t": 1})
        live = []
        while (message := ws.receive_json()).get("type") != "pong":
            live.append(message)
    everything = replayed + live
    assert not [m for m in everything if m.get("ticket_id") in (other.ticket_id, other.confidential_id)]
    assert_no_leak(repr(everything), other, "the WebSocket")
    with client.websocket_connect("/ws") as ws:  # the control: the owning unit is replayed its events
        ws.send_json({"token": city.tokens["zjj"], "last_event_id": 0})
        hello = ws.receive_json()
        own = [ws.receive_json() for _ in range(hello["replay"])]
    assert any(m.get("ticket_id") == other.ticket_id for m in own)
