"""The channels tab's API: every outside channel says whether it is on, the public addresses to configure (built
from HOTLINE_PUBLIC_BASE_URL) and its settings' state without a secret; its 测试 request goes from the server to
itself over HTTP, signed like the real peer, through the channel's route, and the worker makes the ticket."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from hotline.models import AuditEvent
from hotline.services import Services
from hotline.worker import process_inbound_once
from tests.agent_ui.conftest import LiveServer, serve
from tests.channels.phone.conftest import AUTH_TOKEN, PUBLIC_BASE, phone_settings
from tests.conftest import City
from wechat_bot.settings import DEMO_AES_KEY, DEMO_SECRET, DEMO_TOKEN

TEXTS = {"phone": "小区门口的路灯坏了一个星期了", "wechat": "澄江街道建设路有人占道经营",
         "forum": "建设路88号门口的路灯坏了一个星期，晚上很黑", "open311": "建设路与澄江路交叉口有人占道摆摊"}


@pytest.fixture
def server(services: Services, city: City) -> Iterator[LiveServer]:
    services.settings.phone = phone_settings()  # a city behind its public https address
    with serve(services) as live:
        yield live


def call(server: LiveServer, city: City, who: str, method: str, path: str, **body: object) -> httpx.Response:
    return httpx.request(method, server.url + path, headers=city.headers(who), json=body or None, timeout=30)


def test_each_outside_channel_shows_its_public_addresses_and_settings_but_never_a_secret(
    server: LiveServer, city: City
) -> None:
    answer = call(server, city, "admin", "GET", "/api/channels")
    channels = {c["channel"]: c for c in answer.json()}
    phone = channels["phone"]
    assert phone["label"] == "电话（Twilio）" and phone["enabled"] and phone["testable"]
    assert [a["url"] for a in phone["addresses"]] == [f"{PUBLIC_BASE}/channels/twilio/voice",
                                                      f"{PUBLIC_BASE}/channels/twilio/status"]
    states = {s["name"]: (s["state"], s["shown"]) for s in phone["settings"]}
    assert states["HOTLINE_TWILIO_AUTH_TOKEN"] == ("set", None)
    assert states["HOTLINE_PUBLIC_BASE_URL"] == ("set", PUBLIC_BASE)
    wechat = channels["wechat"]
    assert wechat["url"] == f"{PUBLIC_BASE}/channels/wechat" and wechat["enabled"]
    assert {s["name"]: s["state"] for s in wechat["settings"]}["HOTLINE_WECHAT_TOKEN"] == "demo"
    assert channels["forum"]["addresses"][0]["url"] == f"{PUBLIC_BASE}/channels/forum/wenzheng"
    assert channels["forum"]["settings"] == [{"name": "HOTLINE_FORUM_BOARDS", "state": "demo",
                                              "shown": "wenzheng（网络问政）"}]
    assert channels["open311"]["settings"][0]["shown"] == "demo-client"
    assert channels["web"]["url"] == "/public" and not channels["web"]["testable"]
    shown = json.dumps(answer.json(), ensure_ascii=False)
    for secret in (AUTH_TOKEN, DEMO_TOKEN, DEMO_AES_KEY, DEMO_SECRET, "demo-forum-secret", "demo-open311-key"):
        assert secret not in shown


@pytest.mark.parametrize("channel", ["phone", "wechat", "forum", "open311"])
def test_a_channel_test_goes_through_the_real_route_and_the_worker_makes_the_ticket(
    server: LiveServer, services: Services, city: City, channel: str
) -> None:
    tested = call(server, city, "admin", "POST", f"/api/channels/{channel}/test", text=TEXTS[channel])
    assert tested.status_code == 200, tested.text
    result = tested.json()
    assert result["accepted"] and result["error"] is None and result["inbound_id"] is not None, result
    stored = call(server, city, "admin", "GET", f"/api/inbound/{result['inbound_id']}").json()
    assert stored["channel"] == channel and stored["ticket_number"] is None  # the worker has not run yet
    process_inbound_once(services)
    made = call(server, city, "admin", "GET", f"/api/inbound/{result['inbound_id']}").json()
    assert made["state"] == "done" and made["ticket_number"]
    ticket = call(server, city, "agent", "GET", f"/api/tickets/{made['ticket_id']}").json()
    assert TEXTS[channel] in ticket["text"] and ticket["channel"] == channel
    with services.sessions() as s:
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.entity == "channel")).all()
        assert (event.action, event.entity_id, event.actor_id) == ("test", channel, city.ids["user:admin"])
        assert event.after is not None and event.after["inbound_id"] == result["inbound_id"]


def test_the_wechat_test_reads_the_passive_reply_and_a_switched_off_channel_explains_itself(
    server: LiveServer, services: Services, city: City
) -> None:
    result = call(server, city, "admin", "POST", "/api/channels/wechat/test", text=TEXTS["wechat"],
                  sender="oTestCitizen01").json()
    assert "已收到" in result["reply"] and "安全模式" in result["steps"][0]
    services.settings.forum.boards.clear()
    refused = call(server, city, "admin", "POST", "/api/channels/forum/test", text=TEXTS["forum"]).json()
    assert refused["accepted"] is False and "HOTLINE_FORUM_BOARDS" in refused["error"]


def test_channel_tests_are_for_admins_with_a_text_and_a_known_channel(server: LiveServer, city: City) -> None:
    assert call(server, city, "supervisor", "POST", "/api/channels/wechat/test", text="测试一下").status_code == 403
    assert call(server, city, "admin", "POST", "/api/channels/wechat/test", text="").status_code == 422
    # sender and place may be left out or sent as null (found by schemathesis: null gave a 500)
    assert call(server, city, "supervisor", "POST", "/api/channels/wechat/test", text="测试一下", sender=None,
                place=None).status_code == 403
    unknown = call(server, city, "admin", "POST", "/api/channels/email/test", text="测试一下")
    assert unknown.status_code == 404 and unknown.json()["detail"] == "渠道“email”没有测试功能"
    assert call(server, city, "supervisor", "GET", "/api/inbound/1").status_code == 403
    assert call(server, city, "admin", "GET", "/api/inbound/999").json()["detail"] == "渠道消息 #999 不存在"
