"""/channels/wechat with a throwaway accept() that records what it is given (the lead wires the real one)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from wechatpy.crypto import WeChatCrypto

from wechat_bot import texts as say
from wechat_bot.crypto import signature
from wechat_bot.messages import Inbound, TemplateSendFinished, parse_xml
from wechat_bot.routes import PATH, status_query, wechat_router
from wechat_bot.settings import WeChatSettings
from wechat_bot.texts import TicketStatus

TOKEN = "CityToken123"
APPID = "wx1234567890abcdef"
KEY = "DemoEncodingAESKeyOfMingHuCity0123456789abc"
OLD_KEY = "PreviousDemoAESKeyOfMingHuCity0123456789abc"
OPENID = "oQx1t5Citizen0000000000000A"
OTHER = "oQx1t5Neighbour00000000000B"
XML = {"Content-Type": "text/xml"}


@dataclass(frozen=True)
class Stored:
    inbound_id: int
    duplicate: bool


@dataclass
class Intake:
    """accept() as the contract says: store once per (channel, external_id), say whether it was a duplicate."""

    stored: dict[str, Inbound] = field(default_factory=dict)
    calls: list[Inbound] = field(default_factory=list)
    lookups: list[tuple[str, str | None]] = field(default_factory=list)
    reports: list[TemplateSendFinished] = field(default_factory=list)
    tickets: dict[str, list[TicketStatus]] = field(default_factory=dict)
    commits: int = 0

    def accept(self, session: Session, message: Inbound) -> Stored:
        self.calls.append(message)
        duplicate = message.external_id in self.stored
        self.stored.setdefault(message.external_id, message)
        return Stored(list(self.stored).index(message.external_id) + 1, duplicate)

    def lookup(self, session: Session, openid: str, number: str | None) -> Sequence[TicketStatus]:
        self.lookups.append((openid, number))
        own = self.tickets.get(openid, [])
        return [t for t in own if number is None or t.number == number]

    def report(self, session: Session, event: TemplateSendFinished) -> None:
        self.reports.append(event)


@pytest.fixture
def intake() -> Intake:
    return Intake()


def make_client(intake: Intake, **overrides: object) -> TestClient:
    engine = create_engine("sqlite://")

    class CountingSession(Session):
        def commit(self) -> None:
            intake.commits += 1
            super().commit()

    def session() -> Iterator[Session]:
        with CountingSession(engine) as s:
            yield s

    values: dict[str, object] = {"token": TOKEN, "appid": APPID, "aes_key": KEY, **overrides}
    settings = WeChatSettings.model_validate(values)
    app = FastAPI()
    app.include_router(wechat_router(settings, intake.accept, session, intake.lookup, intake.report))
    return TestClient(app)


@pytest.fixture
def client(intake: Intake) -> Iterator[TestClient]:
    with make_client(intake) as c:
        yield c


def signed(nonce: str = "n0nce", timestamp: int | None = None, token: str = TOKEN) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"signature": signature(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": OPENID}


def push(msg_type: str, body: str, sender: str = OPENID, create_time: int = 1767225600) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_mh12345]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>")


def text(content: str, msg_id: int = 24123456789012345, sender: str = OPENID) -> str:
    return push("text", f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>", sender)


def event(name: str, key: str = "") -> str:
    return push("event", f"<Event><![CDATA[{name}]]></Event><EventKey><![CDATA[{key}]]></EventKey>")


def as_wechat_in_safe_mode(xml: str, key: str = KEY, nonce: str = "n0nce") -> tuple[dict[str, str], bytes]:
    """What WeChat posts in safe mode (encrypted by wechatpy, the reference implementation)."""
    ts = str(int(time.time()))
    envelope = parse_xml(WeChatCrypto(TOKEN, key, APPID).encrypt_message(xml, nonce, ts).encode())
    params = {**signed(nonce, int(ts)), "encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
    body = (f"<xml><ToUserName><![CDATA[gh_mh12345]]></ToUserName>"
            f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
    return params, body.encode()


def reply_of(response_body: bytes) -> dict[str, str]:
    return parse_xml(response_body)


# -- URL verification -----------------------------------------------------------------------------------------

def test_url_verification_echoes_echostr(client: TestClient) -> None:
    response = client.get(PATH, params={**signed(), "echostr": "7283619264539"})
    assert response.status_code == 200 and response.text == "7283619264539"


@pytest.mark.parametrize("case", ["forged", "stale", "missing", "other_token"])
def test_url_verification_refuses_forged_and_stale_requests(client: TestClient, case: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    params = {**signed(), "echostr": "1"}
    if case == "forged":
        params["signature"] = "0" * 40
    elif case == "stale":
        params = {**signed(timestamp=int(time.time()) - 3600), "echostr": "1"}
    elif case == "missing":
        params = {"echostr": "1"}
    else:
        params = {**signed(token="AnotherCity99"), "echostr": "1"}
    with caplog.at_level(logging.WARNING, logger="wechat_bot.routes"):
        response = client.get(PATH, params=params)
    assert response.status_code == 403 and "1" not in response.text.split()
    assert any("refused GET" in r.getMessage() for r in caplog.records)


# -- plain mode -----------------------------------------------------------------------------------------------

def test_a_text_message_is_accepted_and_answered_at_once(client: TestClient, intake: Intake) -> None:
    response = client.post(PATH, params=signed(), content=text("澄江街道建设路有人占道经营").encode(), headers=XML)
    assert response.status_code == 200
    reply = reply_of(response.content)
    assert (reply["ToUserName"], reply["FromUserName"], reply["MsgType"]) == (OPENID, "gh_mh12345", "text")
    assert reply["Content"] == say.DEFAULT_TEXTS.received
    [message] = intake.calls
    assert (message.external_id, message.wechat_openid, message.text) == \
        ("24123456789012345", OPENID, "澄江街道建设路有人占道经营")
    assert message.received_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert intake.commits == 1


def test_wechats_three_retries_store_one_message_and_get_the_same_answer(client: TestClient, intake: Intake) -> None:
    body = text("路灯不亮").encode()
    answers = [client.post(PATH, params=signed(nonce=f"retry{i}"), content=body, headers=XML) for i in range(3)]
    assert {reply_of(a.content)["Content"] for a in answers} == {say.DEFAULT_TEXTS.received}
    assert len(intake.calls) == 3 and len(intake.stored) == 1


def test_voice_image_and_location_reach_the_intake(client: TestClient, intake: Intake) -> None:
    voice = push("voice", "<MediaId>v1</MediaId><Format>amr</Format><Recognition>井盖丢了</Recognition>"
                          "<MsgId>11</MsgId>")
    image = push("image", "<PicUrl>http://mmbiz.qpic.cn/x</PicUrl><MediaId>i1</MediaId><MsgId>12</MsgId>")
    place = push("location", "<Location_X>24.88</Location_X><Location_Y>102.83</Location_Y><Scale>16</Scale>"
                             "<Label>东湖区建设路</Label><MsgId>13</MsgId>")
    for body in (voice, image, place):
        assert client.post(PATH, params=signed(), content=body.encode(), headers=XML).status_code == 200
    v, i, loc = intake.calls
    assert v.text == "井盖丢了" and v.media[0].kind == "audio"
    assert i.media[0].media_id == "i1" and i.media[0].url == "http://mmbiz.qpic.cn/x"
    assert (loc.place_text, loc.latitude, loc.longitude) == ("东湖区建设路", 24.88, 102.83)


@pytest.mark.parametrize("case", ["forged", "stale", "no_signature", "replayed_other_token"])
def test_forged_or_stale_pushes_are_refused_and_nothing_stored(client: TestClient, intake: Intake, case: str) -> None:
    params = signed()
    if case == "forged":
        params["signature"] = signature(TOKEN, params["timestamp"], "another-nonce")
    elif case == "stale":
        params = signed(timestamp=int(time.time()) - 301)
    elif case == "no_signature":
        params.pop("signature")
    else:
        params = signed(token="AnotherCity99")
    response = client.post(PATH, params=params, content=text("假消息").encode(), headers=XML)
    assert response.status_code == 403
    assert intake.calls == [] and intake.commits == 0


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">'
                  '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>' + text("&c;"))
EXTERNAL = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/hostname">]>' + text("&e;")


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (BILLION_LAUGHS.encode(), "text/xml", 400),
    (EXTERNAL.encode(), "text/xml", 400),
    (text("很长" * 40_000).encode(), "text/xml", 413),
    (text("路灯").encode("utf-8").replace("路".encode(), b"\xff\xfe"), "text/xml", 400),
    (text("路灯").encode("gbk"), "text/xml", 400),
    (b'{"Content": "json"}', "application/json", 415),
    (text("表单").encode(), "application/x-www-form-urlencoded", 415),
    (b"<xml><Content>no sender</Content></xml>", "application/xml", 400),
], ids=["billion-laughs", "external-entity", "oversized", "invalid-utf8", "gbk", "json", "form", "incomplete"])
def test_hostile_or_wrong_bodies_get_4xx_and_nothing_is_stored(client: TestClient, intake: Intake, body: bytes,
                                                               content_type: str, status: int) -> None:
    response = client.post(PATH, params=signed(), content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert intake.calls == [] and intake.commits == 0


# -- safe mode ------------------------------------------------------------------------------------------------

def test_safe_mode_message_is_decrypted_and_the_reply_encrypted(client: TestClient, intake: Intake) -> None:
    params, body = as_wechat_in_safe_mode(text("小区噪音扰民"))
    response = client.post(PATH, params=params, content=body, headers=XML)
    assert response.status_code == 200
    envelope = parse_xml(response.content)
    plain = WeChatCrypto(TOKEN, KEY, APPID).decrypt_message(response.content.decode(), envelope["MsgSignature"],
                                                             envelope["TimeStamp"], envelope["Nonce"])
    assert reply_of(plain.encode())["Content"] == say.DEFAULT_TEXTS.received
    assert [m.text for m in intake.calls] == ["小区噪音扰民"]


def test_safe_mode_under_the_previous_key_while_the_city_rotates_it(intake: Intake) -> None:
    with make_client(intake, previous_aes_key=OLD_KEY) as c:
        params, body = as_wechat_in_safe_mode(text("旧密钥加密的消息"), key=OLD_KEY)
        response = c.post(PATH, params=params, content=body, headers=XML)
    assert response.status_code == 200
    envelope = parse_xml(response.content)
    plain = WeChatCrypto(TOKEN, OLD_KEY, APPID).decrypt_message(response.content.decode(), envelope["MsgSignature"],
                                                                 envelope["TimeStamp"], envelope["Nonce"])
    assert reply_of(plain.encode())["Content"] == say.DEFAULT_TEXTS.received
    with make_client(Intake()) as without_previous:
        assert without_previous.post(PATH, params=params, content=body, headers=XML).status_code == 403


@pytest.mark.parametrize("case", ["forged_msg_signature", "tampered_body", "another_appid", "no_key_configured"])
def test_safe_mode_refusals(intake: Intake, case: str) -> None:
    params, body = as_wechat_in_safe_mode(text("消息"))
    overrides: dict[str, object] = {}
    if case == "forged_msg_signature":
        params["msg_signature"] = params["signature"]  # the plain signature does not cover the message
    elif case == "tampered_body":
        body = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA")
    elif case == "another_appid":
        overrides["appid"] = "wxanothercity00000"
    else:
        overrides["aes_key"] = None
    with make_client(intake, **overrides) as c:
        response = c.post(PATH, params=params, content=body, headers=XML)
    assert response.status_code == 403
    assert intake.calls == []


def test_hostile_xml_inside_a_correctly_encrypted_push_is_refused(client: TestClient, intake: Intake) -> None:
    params, body = as_wechat_in_safe_mode(BILLION_LAUGHS)
    assert client.post(PATH, params=params, content=body, headers=XML).status_code == 400
    assert intake.calls == []


# -- events, menu, status -------------------------------------------------------------------------------------

def test_subscribe_is_welcomed_with_how_to_report_and_ask(client: TestClient, intake: Intake) -> None:
    response = client.post(PATH, params=signed(), content=event("subscribe").encode(), headers=XML)
    welcome = reply_of(response.content)["Content"]
    assert welcome == say.welcome() and "查询" in welcome and "12345" in welcome
    assert intake.calls == []


@pytest.mark.parametrize(("key", "expected"), [("REPORT", say.DEFAULT_TEXTS.how_to_report),
                                               ("GUIDE", say.DEFAULT_TEXTS.guide)])
def test_menu_clicks_answer_with_their_text(client: TestClient, key: str, expected: str) -> None:
    response = client.post(PATH, params=signed(), content=event("CLICK", key).encode(), headers=XML)
    assert reply_of(response.content)["Content"] == expected


def ticket(number: str, status: str = "办理中") -> TicketStatus:
    return TicketStatus(number, status, datetime(2026, 1, 2, 1, 30, tzinfo=UTC), summary="路灯不亮")


def test_the_status_menu_lists_only_the_senders_tickets(client: TestClient, intake: Intake) -> None:
    intake.tickets = {OPENID: [ticket("20260101000123")], OTHER: [ticket("20260101000999")]}
    response = client.post(PATH, params=signed(), content=event("CLICK", "STATUS").encode(), headers=XML)
    answer = reply_of(response.content)["Content"]
    assert "20260101000123" in answer and "20260101000999" not in answer
    assert "办理中" in answer and "01月02日 09:30" in answer  # in the city's time
    assert intake.lookups == [(OPENID, None)]


def test_asking_for_a_number_answers_from_the_senders_own_tickets(client: TestClient, intake: Intake) -> None:
    intake.tickets = {OPENID: [ticket("20260101000123", "已办结")], OTHER: [ticket("20260101000999")]}
    own = client.post(PATH, params=signed(), content=text("查询 20260101000123").encode(), headers=XML)
    assert "已办结" in reply_of(own.content)["Content"]
    someone_elses = client.post(PATH, params=signed(), content=text("查询20260101000999", msg_id=2).encode(),
                                headers=XML)
    assert reply_of(someone_elses.content)["Content"] == say.not_found("20260101000999")
    assert intake.lookups == [(OPENID, "20260101000123"), (OPENID, "20260101000999")]
    assert intake.calls == []  # a status question is not a new request


@pytest.mark.parametrize(("message", "expected"), [
    ("查询 20260101000123", (True, "20260101000123")), ("查询：２０２６０１０１０００１２３", (True, "20260101000123")),
    ("查进度", (True, None)), ("进度查询", (True, None)), ("查询一下社保卡怎么补办", (False, None)),
    ("我想查询路灯什么时候修", (False, None))])
def test_status_questions_are_recognised(message: str, expected: tuple[bool, str | None]) -> None:
    assert status_query(message) == expected


def test_delivery_reports_reach_the_outbox_and_other_events_get_success(client: TestClient, intake: Intake) -> None:
    done = push("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID><Status>success</Status>")
    for body in (done, event("unsubscribe"), event("VIEW", "https://12345.example.gov.cn")):
        response = client.post(PATH, params=signed(), content=body.encode(), headers=XML)
        assert response.content == b"success"
    assert [(r.msg_id, r.status) for r in intake.reports] == [(200163836, "success")]
    assert intake.calls == []


def test_an_unsupported_message_type_says_what_works(client: TestClient, intake: Intake) -> None:
    video = push("video", "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>5</MsgId>")
    response = client.post(PATH, params=signed(), content=video.encode(), headers=XML)
    assert reply_of(response.content)["Content"] == say.DEFAULT_TEXTS.unsupported
    assert intake.calls == []
