"""The agent desk's phone queue (``/api/phone/…``): a caller queued by the IVR waits on every open desk with the
draft ticket of the transcript; 接听下一个 puts the oldest call through to the agent's own device through the real
REST client against the fake Twilio; three-party calls, callbacks of missed calls and the browser phone's token."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hotline.models import QueuedCall, TicketEvent, User
from hotline.services import Services
from hotline.worker import process_inbound_once
from tests.channels.phone.conftest import AUTH_TOKEN, HOTLINE, PUBLIC_BASE, phone_services, phone_settings
from tests.conftest import City
from tests.fakes.twilio_api import FakeTwilioApi
from tests.fakes.twilio_caller import TwilioCaller

CITIZEN = "+8613812345678"
AGENT_DEVICE = "+8657188880001"
API_KEY, API_SECRET = "SK" + "ab" * 16, "the-api-secret-of-this-city-0123456789"
APP_SID = "AP" + "cd" * 16


@pytest.fixture
def services(db_url: str, tmp_path: Path, fake_twilio: FakeTwilioApi) -> Iterator[Services]:
    services = phone_services(db_url, tmp_path, fake_twilio)
    yield services
    services.engine.dispose()


def set_device(services: Services, city: City, who: str, device: str | None) -> None:
    with services.sessions() as s:
        user = s.get(User, city.ids[f"user:{who}"])
        assert user is not None
        user.phone_device = device
        s.commit()


def queued_caller(client: TestClient, fake: FakeTwilioApi, said: str = "澄江街道幸福小区门口的路灯坏了一个星期了",
                  from_: str = CITIZEN) -> TwilioCaller:
    """A caller who described the request and now waits in the queue (Twilio knows the call)."""
    call = TwilioCaller(client, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE, from_=from_)
    call.dial_in()
    call.press("1")
    assert call.say(said).tags == ["Say", "Enqueue"]
    fake.inbound_call(call.call_sid, from_, HOTLINE)
    return call


def update_twiml(fake: FakeTwilioApi, call_sid: str) -> ET.Element:
    [request] = [r for r in fake.requests_to(f"Calls/{call_sid}.json") if r.method == "POST"]
    twiml = request.field("Twiml")
    assert twiml is not None
    return ET.fromstring(twiml)


def test_a_queued_call_waits_on_the_desk_with_its_draft_and_the_number_masked_per_role(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    earlier = client.post("/api/intake", headers=city.headers("agent"), json={
        "channel": "phone", "text": "上个月反映过的噪音问题", "citizen": {"phone": "13812345678"}})
    assert earlier.status_code in (200, 201)
    queued_caller(client, fake_twilio)
    process_inbound_once(services)

    agent = client.get("/api/phone/queue", headers=city.headers("agent")).json()
    [waiting] = agent["items"]
    assert waiting["phone"] == "13812345678" and waiting["status"] == "waiting"
    assert waiting["ticket"]["text"] == "澄江街道幸福小区门口的路灯坏了一个星期了"
    assert "analysis" in waiting["ticket"]
    assert [t["number"] for t in waiting["earlier"]] == [earlier.json()["number"]]
    dispatcher = client.get("/api/phone/queue", headers=city.headers("dispatcher")).json()
    assert dispatcher["items"][0]["phone"] == "138****5678"
    assert "13812345678" not in str(dispatcher)
    assert client.get("/api/phone/queue", headers=city.headers("cgj")).status_code == 403
    assert client.post("/api/phone/queue/next", headers=city.headers("cgj")).status_code == 403


def test_take_next_puts_the_oldest_call_through_to_the_agents_own_device(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    first = queued_caller(client, fake_twilio)
    second = queued_caller(client, fake_twilio, "楼下餐馆油烟太大", from_="+8613900001111")
    process_inbound_once(services)

    refused = client.post("/api/phone/queue/next", headers=city.headers("agent"))
    assert refused.status_code == 409 and "接听设备" in refused.json()["detail"]
    set_device(services, city, "agent", "057188880001")
    taken = client.post("/api/phone/queue/next", headers=city.headers("agent"))
    assert taken.status_code == 200, taken.text
    assert taken.json()["call"]["ticket"]["text"] == "澄江街道幸福小区门口的路灯坏了一个星期了"  # the screen-pop
    dial = update_twiml(fake_twilio, first.call_sid).find("Dial")
    assert dial is not None and dial.get("callerId") == HOTLINE
    assert [(n.tag, n.text) for n in dial] == [("Number", AGENT_DEVICE)]
    assert fake_twilio.calls[first.call_sid]["queue"] is None  # out of Twilio's queue, on its way to the agent

    set_device(services, city, "agent2", "sip:agent2@pbx.12345.minghu.gov.cn")
    second_taken = client.post("/api/phone/queue/next", headers=city.headers("agent2")).json()
    assert second_taken["call"]["ticket"]["text"] == "楼下餐馆油烟太大"
    sip = update_twiml(fake_twilio, second.call_sid).find("Dial/Sip")
    assert sip is not None and sip.text == "sip:agent2@pbx.12345.minghu.gov.cn"
    empty = client.post("/api/phone/queue/next", headers=city.headers("agent"))
    assert empty.status_code == 404 and empty.json()["detail"] == "目前没有排队等候的来电"
    assert client.get("/api/phone/queue", headers=city.headers("agent")).json()["items"] == []


def test_a_caller_who_hung_up_before_the_redirect_is_skipped_for_the_next(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    gone = queued_caller(client, fake_twilio)
    fake_twilio.calls[gone.call_sid]["status"] = "completed"  # hung up; its queue result has not arrived yet
    waiting = queued_caller(client, fake_twilio, "小区电梯坏了", from_="+8613900002222")
    set_device(services, city, "agent", AGENT_DEVICE)
    fake_twilio.fail_next(1, 503)  # Twilio down: the caller keeps waiting, the agent hears why
    down = client.post("/api/phone/queue/next", headers=city.headers("agent"))
    assert down.status_code == 503 and "电话平台" in down.json()["detail"]
    assert len(client.get("/api/phone/queue", headers=city.headers("agent")).json()["items"]) == 2
    taken = client.post("/api/phone/queue/next", headers=city.headers("agent")).json()
    assert taken["call"]["phone"] == "13900002222"
    with services.sessions() as s:
        statuses = {c.call_sid: c.status for c in s.scalars(select(QueuedCall))}
    assert statuses == {gone.call_sid: "abandoned", waiting.call_sid: "taken"}


def test_two_agents_taking_at_once_never_get_the_same_call(
    db_url: str, client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrent writers: PostgreSQL (SQLite serialises them anyway)")
    for n in range(3):
        queued_caller(client, fake_twilio, f"第{n}个来电的诉求", from_=f"+861390000{n:04d}")
    set_device(services, city, "agent", AGENT_DEVICE)
    set_device(services, city, "agent2", "+8657188880002")
    answers: dict[str, list[Any]] = {"agent": [], "agent2": []}
    barrier = threading.Barrier(2)

    def take(who: str) -> None:
        barrier.wait()
        for _ in range(3):
            answer = client.post("/api/phone/queue/next", headers=city.headers(who))
            answers[who].append(answer.json()["call"]["id"] if answer.status_code == 200 else answer.status_code)

    threads = [threading.Thread(target=take, args=(who,)) for who in answers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [a for a in answers["agent"] + answers["agent2"] if a != 404]
    assert len(taken) == 3 and len(set(taken)) == 3, answers
    assert all(isinstance(a, int) for a in taken)
    updates = [r for r in fake_twilio.requests if r.method == "POST" and r.field("Twiml")]
    assert len(updates) == 3 and len({r.path for r in updates}) == 3


def test_a_hangup_in_the_queue_leaves_every_open_desk(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    with client.websocket_connect("/ws") as agent_ws, client.websocket_connect("/ws") as unit_ws:
        agent_ws.send_json({"token": city.tokens["agent"]})
        unit_ws.send_json({"token": city.tokens["cgj"]})
        assert agent_ws.receive_json()["type"] == "hello" and unit_ws.receive_json()["type"] == "hello"
        call = queued_caller(client, fake_twilio)
        arrived = agent_ws.receive_json()
        assert (arrived["type"], arrived["kind"], arrived["status"]) == ("desk_notice", "phone_queue", "waiting")
        assert "13812345678" not in str(arrived)  # the desk reloads the queue, masked per role
        call.leave_queue("hangup", 40)
        left = agent_ws.receive_json()
        assert (left["kind"], left["status"], left["queued_call_id"]) == ("phone_queue", "abandoned",
                                                                           arrived["queued_call_id"])
        unit_ws.send_json({"type": "ping", "t": 1})
        assert unit_ws.receive_json()["type"] == "pong"  # the unit's desk heard nothing of the phone queue
    assert client.get("/api/phone/queue", headers=city.headers("agent")).json()["items"] == []


def test_three_party_adds_the_agent_and_the_emergency_line_to_a_conference_and_the_ticket_records_it(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    call = queued_caller(client, fake_twilio, "隔壁老人好几天没见出门，敲门也没人应")
    process_inbound_once(services)
    set_device(services, city, "agent", AGENT_DEVICE)
    taken = client.post("/api/phone/queue/next", headers=city.headers("agent")).json()
    call_id = taken["call"]["id"]
    assert client.post(f"/api/phone/queue/{call_id}/three-party", headers=city.headers("agent2"),
                       json={"line": "119"}).status_code == 404  # not agent2's call
    bad = client.post(f"/api/phone/queue/{call_id}/three-party", headers=city.headers("agent"), json={"line": "999"})
    assert bad.status_code == 422

    answer = client.post(f"/api/phone/queue/{call_id}/three-party", headers=city.headers("agent"),
                         json={"line": "119"})
    assert answer.status_code == 200, answer.text
    room = answer.json()["conference"]
    assert room == f"hotline-{call.call_sid}"
    assert sorted(p["to"] for p in fake_twilio.participants.values()) == sorted([AGENT_DEVICE, "+8657100119"])
    assert "/channels/twilio/voice/conference" in (fake_twilio.calls[call.call_sid]["url"] or "")
    with services.sessions() as s:
        [event] = s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == taken["call"]["ticket"]["id"],
                                                      TicketEvent.type == "call"))
        assert event.data["step"] == "three_party" and event.data["line"] == "119" and "三方通话" in event.note


def test_calling_a_missed_caller_back_rings_the_agent_then_the_citizen_once(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    call = queued_caller(client, fake_twilio)
    call.leave_queue("hangup", 40)
    process_inbound_once(services)
    [missed] = client.get("/api/desk/callbacks", headers=city.headers("agent")).json()["items"]
    set_device(services, city, "agent", AGENT_DEVICE)
    first = client.post(f"/api/phone/callbacks/{missed['id']}/call", headers=city.headers("agent"))
    again = client.post(f"/api/phone/callbacks/{missed['id']}/call", headers=city.headers("agent"))
    assert first.status_code == again.status_code == 200, first.text
    assert again.json()["replayed"] is True and again.json()["call_sid"] == first.json()["call_sid"]
    creates = [r for r in fake_twilio.requests_to("Calls.json") if r.method == "POST"]
    assert len(creates) == 1
    assert creates[0].field("To") == AGENT_DEVICE
    dial = ET.fromstring(creates[0].field("Twiml") or "").find("Dial/Number")
    assert dial is not None and dial.text == CITIZEN
    assert client.post(f"/api/phone/callbacks/{missed['id']}/call", headers=city.headers("cgj")).status_code == 403


def test_the_voice_token_is_a_voice_grant_for_this_agent_only_where_the_browser_phone_is_on(
    db_url: str, tmp_path: Path, client: TestClient, city: City, fake_twilio: FakeTwilioApi
) -> None:
    off = client.get("/api/phone/voice-token", headers=city.headers("agent"))
    assert off.status_code == 404 and "浏览器接听" in off.json()["detail"]

    from hotline.app import create_app

    services = phone_services(db_url, tmp_path, fake_twilio, twilio_browser_phone=True, twilio_api_key=API_KEY,
                             twilio_api_secret=API_SECRET, twilio_twiml_app_sid=APP_SID)
    with TestClient(create_app(services.settings, services)) as browser_city:
        answer = browser_city.get("/api/phone/voice-token", headers=city.headers("agent")).json()
    services.engine.dispose()
    claims = jwt.decode(answer["token"], API_SECRET, algorithms=["HS256"])
    assert claims["iss"] == API_KEY and claims["sub"] == phone_settings().twilio_account_sid
    assert claims["grants"]["identity"] == answer["identity"] == f"agent-{city.ids['user:agent']}"
    assert claims["grants"]["voice"]["outgoing"]["application_sid"] == APP_SID
    assert claims["grants"]["voice"]["incoming"]["allow"] is True


def test_the_browser_phone_is_refused_at_start_without_its_key_and_app(fake_twilio: FakeTwilioApi) -> None:
    with pytest.raises(ValueError, match="HOTLINE_TWILIO_TWIML_APP_SID"):
        phone_settings(twilio_browser_phone=True)


def test_in_the_demo_a_simulated_call_waits_in_the_fake_twilio_queue_and_is_taken_from_the_desk(
    db_url: str, tmp_path: Path, city: City, fake_twilio: FakeTwilioApi
) -> None:
    from channels.phone.simulate import SimulatedCall
    from hotline.app import create_app

    demo = phone_services(db_url, tmp_path, fake_twilio, demo=True)
    set_device(demo, city, "agent", AGENT_DEVICE)
    with TestClient(create_app(demo.settings, demo)) as desk:
        call = SimulatedCall(demo.settings.phone, CITIZEN, desk, say_line=lambda _line: None)
        call.run("1", "小区门口的路灯坏了", hang_up_in_queue=False)
        assert fake_twilio.calls[call.call_sid]["queue"] == "hotline"  # the fake knows the caller waits
        [waiting] = desk.get("/api/phone/queue", headers=city.headers("agent")).json()["items"]
        assert waiting["phone"] == "13812345678"
        assert desk.post("/api/phone/queue/next", headers=city.headers("agent")).status_code == 200
    demo.engine.dispose()
    assert update_twiml(fake_twilio, call.call_sid).find("Dial/Number") is not None
    assert fake_twilio.calls[call.call_sid]["queue"] is None


def test_an_admin_sets_an_agents_phone_device_and_take_next_dials_it(
    client: TestClient, city: City, fake_twilio: FakeTwilioApi
) -> None:
    path = f"/api/users/{city.ids['user:agent']}"
    bad = client.patch(path, headers=city.headers("admin"), json={"phone_device": "我的分机"})
    assert bad.status_code == 422
    changed = client.patch(path, headers=city.headers("admin"), json={"phone_device": "sip:8001@pbx.minghu.gov.cn"})
    assert changed.status_code == 200 and changed.json()["phone_device"] == "sip:8001@pbx.minghu.gov.cn"
    call = queued_caller(client, fake_twilio)
    assert client.post("/api/phone/queue/next", headers=city.headers("agent")).status_code == 200
    sip = update_twiml(fake_twilio, call.call_sid).find("Dial/Sip")
    assert sip is not None and sip.text == "sip:8001@pbx.minghu.gov.cn"


def test_with_the_browser_phone_take_next_rings_the_agents_browser(
    db_url: str, tmp_path: Path, city: City, fake_twilio: FakeTwilioApi
) -> None:
    from hotline.app import create_app

    browser = phone_services(db_url, tmp_path, fake_twilio, twilio_browser_phone=True, twilio_api_key=API_KEY,
                             twilio_api_secret=API_SECRET, twilio_twiml_app_sid=APP_SID)
    fake_twilio.api_keys[API_KEY] = API_SECRET  # the REST client authenticates with the API key now
    with TestClient(create_app(browser.settings, browser)) as desk:
        call = queued_caller(desk, fake_twilio)
        taken = desk.post("/api/phone/queue/next", headers=city.headers("agent"))
        assert taken.status_code == 200, taken.text
    browser.engine.dispose()
    client_noun = update_twiml(fake_twilio, call.call_sid).find("Dial/Client")
    assert client_noun is not None and client_noun.text == f"agent-{city.ids['user:agent']}"
