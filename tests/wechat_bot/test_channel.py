"""The WeChat channel in the running app: WeChat pushes through the real route, the worker makes the tickets, the
citizen hears back through the outbox and the fake WeChat API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Select, func, select, update

from hotline import inbound, outbox
from hotline.models import InboundMessage, KnowledgeArticle, OutboxMessage, Ticket, TicketEvent
from hotline.services import Services
from hotline.worker import channel_handlers
from tests.conftest import REPO, City, act
from tests.fakes.wechat_api import FakeWeChat
from tests.wechat_bot import peer
from tests.wechat_bot.peer import WeChat, reply_text
from wechat_bot import simulator
from wechat_bot.client import WeChatClient
from wechat_bot.messages import MENU_STATUS
from wechat_bot.sender import WeChatSender

T = TypeVar("T")
DEMO_KNOWLEDGE = json.loads((REPO / "hotline" / "demo_data" / "knowledge.json").read_text(encoding="utf-8"))
CITIZEN = "oMhCitizen000000000000000A1"
NEIGHBOUR = "oMhNeighbour0000000000000B2"
COMPLAINT = "澄江街道建设路有人占道经营，摊位堵住了人行道"


@pytest.fixture
def wechat(client: TestClient, services: Services) -> WeChat:
    s = services.settings.wechat
    assert s.aes_key is not None
    return WeChat(client, s.token, s.appid, s.aes_key)


@pytest.fixture
def send(wechat_api: FakeWeChat) -> Iterator[WeChatSender]:
    with WeChatClient(wechat_api.appid, wechat_api.secret, base_url=wechat_api.base_url) as client:
        yield WeChatSender(client)


def process(services: Services) -> inbound.ProcessReport:
    return inbound.process_pending(services.sessions, services.suggester, services.timing,
                                   handlers=channel_handlers(services), limit=2000)


def counts(services: Services) -> tuple[int, int]:
    """(stored messages, tickets), read in a transaction of its own (SQLite: never holding a lock)."""
    with services.sessions() as s:
        return (s.scalar(select(func.count()).select_from(InboundMessage)) or 0,
                s.scalar(select(func.count()).select_from(Ticket)) or 0)


def rows(services: Services, stmt: Select[tuple[T]]) -> list[T]:
    with services.sessions() as s:
        return list(s.scalars(stmt))


def tickets(services: Services) -> list[Ticket]:
    return rows(services, select(Ticket).order_by(Ticket.id))


def notices(services: Services) -> list[OutboxMessage]:
    return rows(services, select(OutboxMessage).order_by(OutboxMessage.id))


def events(services: Services, type_: str) -> list[TicketEvent]:
    return rows(services, select(TicketEvent).where(TicketEvent.type == type_).order_by(TicketEvent.id))


def test_a_message_sent_three_times_by_wechat_is_one_ticket_and_the_citizen_gets_its_number(
        wechat: WeChat, services: Services, send: WeChatSender, wechat_api: FakeWeChat) -> None:
    xml = peer.text_xml(CITIZEN, COMPLAINT)
    for _ in range(3):  # WeChat retries after 5 s without an answer, with the same MsgId
        response = wechat.post(xml)
        assert response.status_code == 200
        assert "已收到" in reply_text(response)
    assert process(services).created == 1
    (ticket,) = tickets(services)
    assert (ticket.channel, ticket.text) == ("wechat", COMPLAINT)
    assert counts(services) == (1, 1)
    (notice,) = notices(services)
    assert (notice.kind, notice.recipient, notice.ticket_id) == ("ticket_received", CITIZEN, ticket.id)

    wechat_api.citizen_wrote(CITIZEN)
    assert outbox.send_pending(services.sessions, {"wechat": send}).sent == 1
    (call,) = wechat_api.calls("/cgi-bin/message/custom/send")
    assert call.json()["touser"] == CITIZEN
    assert f"受理编号：{ticket.number}" in call.json()["text"]["content"]


def test_safe_mode_pushes_are_opened_and_answered_encrypted(wechat: WeChat, services: Services) -> None:
    response = wechat.post_encrypted(peer.text_xml(CITIZEN, COMPLAINT))
    assert response.status_code == 200
    assert "已收到" in wechat.decrypt_reply(response)
    process(services)
    assert [t.text for t in tickets(services)] == [COMPLAINT]


def test_forged_and_stale_pushes_are_refused_with_403_and_nothing_is_stored(wechat: WeChat,
                                                                            services: Services) -> None:
    xml = peer.text_xml(CITIZEN, COMPLAINT)
    forged = wechat.params(token="SomeoneElsesToken")
    assert wechat.client.post("/channels/wechat", params=forged, content=xml.encode(),
                              headers=peer.XML).status_code == 403
    stale = wechat.params(timestamp=int(time.time()) - 3600)
    assert wechat.client.post("/channels/wechat", params=stale, content=xml.encode(),
                              headers=peer.XML).status_code == 403
    unsigned = {"timestamp": str(int(time.time())), "nonce": "abc"}
    assert wechat.client.post("/channels/wechat", params=unsigned, content=xml.encode(),
                              headers=peer.XML).status_code == 403
    assert wechat.client.get("/channels/wechat", params={**forged, "echostr": "e"}).status_code == 403
    verified = wechat.client.get("/channels/wechat", params={**wechat.params(), "echostr": "hello-wechat"})
    assert (verified.status_code, verified.text) == (200, "hello-wechat")
    assert counts(services) == (0, 0)


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
                  '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><xml><ToUserName>gh</ToUserName>'
                  f'<FromUserName>{CITIZEN}</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>'
                  '<Content>&c;</Content><MsgId>1</MsgId></xml>')
EXTERNAL_ENTITY = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml>'
                   f'<ToUserName>gh</ToUserName><FromUserName>{CITIZEN}</FromUserName><CreateTime>1</CreateTime>'
                   '<MsgType>text</MsgType><Content>&x;</Content><MsgId>2</MsgId></xml>')


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (BILLION_LAUGHS.encode(), "text/xml", 400),
    (EXTERNAL_ENTITY.encode(), "text/xml", 400),
    (peer.text_xml(CITIZEN, "很长" * 40_000).encode(), "text/xml", 413),
    (peer.text_xml(CITIZEN, "占道经营").encode("utf-8").replace("占".encode(), b"\xff\xfe"), "text/xml", 400),
    (peer.text_xml(CITIZEN, "占道经营").encode(), "application/json", 415),
    (b"<xml><ToUserName>gh</ToUserName>", "text/xml", 400),
], ids=["billion-laughs", "external-entity", "oversized", "invalid-utf8", "wrong-content-type", "truncated"])
def test_hostile_or_malformed_pushes_are_refused_and_nothing_is_stored(
        wechat: WeChat, services: Services, body: bytes, content_type: str, status: int) -> None:
    response = wechat.client.post("/channels/wechat", params=wechat.params(), content=body,
                                  headers={"Content-Type": content_type})
    assert response.status_code == status
    assert counts(services) == (0, 0)


def test_a_text_a_photo_and_a_location_minutes_apart_make_one_ticket(wechat: WeChat, services: Services) -> None:
    start = int(time.time()) - 900
    wechat.post(peer.text_xml(CITIZEN, COMPLAINT, create_time=start))
    process(services)
    wechat.post(peer.image_xml(CITIZEN, "media-photo-1", create_time=start + 120))
    wechat.post(peer.location_xml(CITIZEN, "东湖区澄江街道建设路", create_time=start + 420))
    process(services)
    (ticket,) = tickets(services)
    assert ticket.location == "东湖区澄江街道建设路"
    joined = events(services, "citizen_message")
    assert [e.data.get("attachments", [{}])[0].get("media_id") for e in joined] == ["media-photo-1", None]
    assert joined[1].data["place"] == "东湖区澄江街道建设路"
    assert joined[1].data["coordinates"] == {"latitude": 30.27, "longitude": 120.15}
    assert [n.kind for n in notices(services)] == ["ticket_received", "ticket_joined", "ticket_joined"]
    assert all(m.ticket_id == ticket.id for m in rows(services, select(InboundMessage)))

    wechat.post(peer.text_xml(CITIZEN, "另外小区门口路灯坏了", create_time=start + 420 + 11 * 60))
    process(services)
    assert len(tickets(services)) == 2  # more than ten minutes after the last message: a new matter


def test_another_citizens_message_never_joins_a_ticket(wechat: WeChat, services: Services) -> None:
    wechat.post(peer.text_xml(CITIZEN, COMPLAINT))
    wechat.post(peer.image_xml(NEIGHBOUR, "media-photo-2"))
    process(services)
    assert len(tickets(services)) == 2


def test_a_voice_message_without_transcript_waits_for_an_agent_with_the_audio(wechat: WeChat,
                                                                             services: Services) -> None:
    wechat.post(peer.voice_xml(CITIZEN, "media-voice-1"))
    wechat.post(peer.voice_xml(NEIGHBOUR, "media-voice-2", recognition="建设路的路灯坏了一个星期了"))
    process(services)
    untranscribed, transcribed = tickets(services)
    assert untranscribed.status == "received" and "尚未转写" in untranscribed.text
    receive = events(services, "receive")[0]
    assert receive.data["attachments"][0]["media_id"] == "media-voice-1"
    assert transcribed.text == "建设路的路灯坏了一个星期了"


def test_status_questions_answer_only_the_citizens_own_tickets(wechat: WeChat, services: Services) -> None:
    wechat.post(peer.text_xml(CITIZEN, COMPLAINT))
    wechat.post(peer.text_xml(NEIGHBOUR, "西山区某小区电梯经常停运"))
    process(services)
    own, neighbours = tickets(services)

    answer = reply_text(wechat.post(peer.text_xml(CITIZEN, f"查询 {own.number}")))
    assert own.number in answer and "已受理" in answer
    refused = reply_text(wechat.post(peer.text_xml(CITIZEN, f"查询 {neighbours.number}")))
    assert "没有查到您名下" in refused and "电梯" not in refused
    menu = reply_text(wechat.post(peer.click_xml(CITIZEN, MENU_STATUS)))
    assert own.number in menu and neighbours.number not in menu
    assert counts(services) == (2, 2)  # questions are answered at once, never stored as messages


def test_a_question_the_knowledge_base_answers_is_answered_at_once(wechat: WeChat, services: Services,
                                                                   send: WeChatSender,
                                                                   wechat_api: FakeWeChat) -> None:
    with services.sessions() as session:  # the demo city's knowledge base: about sixty articles
        session.add_all(KnowledgeArticle(title=a["title"], body=a["body"]) for a in DEMO_KNOWLEDGE)
        session.commit()
    wechat.post(peer.text_xml(CITIZEN, "社保卡丢了怎么补办"))
    wechat.post(peer.text_xml(NEIGHBOUR, "楼下饭店油烟扰民，晚上睡不着"))
    process(services)
    answered, complaint = tickets(services)
    assert answered.status == "answered" and "社保卡合作银行网点申请补卡" in (answered.reply_text or "")
    assert complaint.status == "received"
    assert [(n.kind, n.ticket_id) for n in notices(services)] == [("ticket_answered", answered.id),
                                                                 ("ticket_received", complaint.id)]
    wechat_api.citizen_wrote(CITIZEN)
    wechat_api.citizen_wrote(NEIGHBOUR)
    outbox.send_pending(services.sessions, {"wechat": send})
    first = wechat_api.calls("/cgi-bin/message/custom/send")[0].json()
    assert first["touser"] == CITIZEN and "社保卡合作银行网点申请补卡" in first["text"]["content"]


def test_the_units_reply_and_the_close_reach_the_citizen_in_wechat(wechat: WeChat, services: Services, city: City,
                                                                   send: WeChatSender,
                                                                   wechat_api: FakeWeChat) -> None:
    wechat.post(peer.text_xml(CITIZEN, COMPLAINT))
    process(services)
    (ticket,) = tickets(services)
    client = wechat.client
    assert act(client, city, "dispatcher", ticket.id, "dispatch", unit_id=city.ids["unit:cgj"]).status_code == 200
    assert act(client, city, "cgj", ticket.id, "sign").status_code == 200
    assert act(client, city, "cgj", ticket.id, "reply", note="摊位已清理，人行道已恢复通行。").status_code == 200
    assert act(client, city, "agent", ticket.id, "callback", satisfaction="satisfied", solved=True).status_code == 200
    assert act(client, city, "agent", ticket.id, "close").status_code == 200
    assert [n.kind for n in notices(services)] == ["ticket_received", "ticket_replied", "ticket_closed"]

    wechat_api.citizen_wrote(CITIZEN)
    assert outbox.send_pending(services.sessions, {"wechat": send}).sent == 3
    said = [c.json()["text"]["content"] for c in wechat_api.calls("/cgi-bin/message/custom/send")]
    assert "摊位已清理，人行道已恢复通行。" in said[1] and ticket.number in said[1]
    assert "已办结" in said[2]


def test_outside_the_48_hour_window_a_notice_goes_as_a_template_message_where_configured(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat) -> None:
    wechat.post(peer.text_xml(CITIZEN, COMPLAINT))
    process(services)
    wechat_api.citizen_wrote(CITIZEN, at=time.time() - 49 * 3600)
    with WeChatClient(wechat_api.appid, wechat_api.secret, base_url=wechat_api.base_url) as client:
        assert outbox.send_pending(services.sessions, {"wechat": WeChatSender(client)}).failed == 1
        with services.sessions() as session:
            session.execute(update(OutboxMessage).values(state="pending", attempts=0))
            session.commit()
        templated = WeChatSender(client, template_id="TPL-progress")
        assert outbox.send_pending(services.sessions, {"wechat": templated}).sent == 1
    (call,) = wechat_api.calls("/cgi-bin/message/template/send")
    assert call.json()["data"]["keyword1"]["value"] == tickets(services)[0].number
    (row,) = notices(services)
    assert row.state == "sent" and (row.provider_id or "").startswith("template:")

    msgid = (row.provider_id or "").removeprefix("template:")
    report = peer.push_xml(CITIZEN, "event", f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msgid}</MsgID>"
                           "<Status><![CDATA[failed:user block]]></Status>")
    assert wechat.post(report).status_code == 200
    (row,) = notices(services)
    assert (row.state, row.last_error) == ("failed", "WeChat delivery report: failed:user block")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_thousand_messages_pushed_at_once_are_a_thousand_tickets(wechat: WeChat, services: Services,
                                                                    db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrent writers need PostgreSQL")
    count = 1000
    pushes = [peer.text_xml(f"oMhCrowd{n:019d}", f"建设路{n}号门前路灯不亮") for n in range(count)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda xml: wechat.post(xml).status_code, pushes + pushes[:100]))
    assert statuses == [200] * (count + 100)  # the last hundred are WeChat's retries
    assert counts(services) == (count, 0)
    while process(services):
        pass
    assert counts(services) == (count, count)
    with services.sessions() as s:
        assert s.scalar(select(func.count(func.distinct(InboundMessage.ticket_id)))) == count


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe-mode"])
def test_the_simulator_sends_pushes_the_server_accepts_as_wechats(client: TestClient, services: Services,
                                                                   safe: bool) -> None:
    settings = services.settings.wechat
    reply = simulator.push(settings, str(client.base_url), simulator.text(CITIZEN, COMPLAINT), safe=safe, http=client)
    assert "已收到" in reply
    simulator.push(settings, str(client.base_url), simulator.image(CITIZEN, "demo-photo"), safe=safe, http=client)
    process(services)
    (ticket,) = tickets(services)
    assert ticket.text == COMPLAINT and len(events(services, "citizen_message")) == 1
    status = simulator.push(settings, str(client.base_url), simulator.menu(CITIZEN, MENU_STATUS), safe=safe,
                            http=client)
    assert ticket.number in status
