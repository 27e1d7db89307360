"""Pushed XML is read safely, into the same fields wechatpy reads, and every hostile body is refused."""

from __future__ import annotations

import pytest
from wechatpy import create_reply, parse_message

from wechat_bot.messages import (
    MAX_PUSH_BYTES,
    HostileXml,
    Image,
    Location,
    MalformedPush,
    MenuClick,
    PushTooLarge,
    Subscribe,
    TemplateSendFinished,
    Text,
    Unsubscribe,
    Unsupported,
    Voice,
    inbound,
    parse_push,
    parse_xml,
    text_reply,
)

OPENID = "oQx1t5Citizen0000000000000A"


def push(msg_type: str, body: str, create_time: int = 1700000000) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_mh12345]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>"
    ).encode()


TEXT = push("text", "<Content><![CDATA[澄江街道建设路有人占道经营]]></Content><MsgId>24123456789012345</MsgId>")
VOICE = push("voice", "<MediaId><![CDATA[media_v1]]></MediaId><Format><![CDATA[amr]]></Format>"
                      "<Recognition><![CDATA[小区门口的路灯坏了]]></Recognition><MsgId>24123456789012346</MsgId>")
IMAGE = push("image", "<PicUrl><![CDATA[http://mmbiz.qpic.cn/abc]]></PicUrl><MediaId><![CDATA[media_i1]]></MediaId>"
                      "<MsgId>24123456789012347</MsgId>")
LOCATION = push("location", "<Location_X>24.881301</Location_X><Location_Y>102.832891</Location_Y><Scale>15</Scale>"
                            "<Label><![CDATA[明湖市东湖区建设路18号]]></Label><MsgId>24123456789012348</MsgId>")


def test_text_reads_like_wechatpy_reads_it() -> None:
    ours, theirs = parse_push(TEXT), parse_message(TEXT.decode())
    assert isinstance(ours, Text)
    assert (ours.content, ours.msg_id, ours.from_user, ours.to_user, ours.create_time) == \
        (theirs.content, theirs.id, theirs.source, theirs.target, int(theirs.create_time.timestamp()))
    assert ours.external_id == "24123456789012345"


def test_voice_carries_wechats_transcript_and_the_audio() -> None:
    ours, theirs = parse_push(VOICE), parse_message(VOICE.decode())
    assert isinstance(ours, Voice)
    assert (ours.media_id, ours.format, ours.recognition) == (theirs.media_id, theirs.format, theirs.recognition)
    record = inbound(ours)
    assert record is not None and record.text == "小区门口的路灯坏了"
    assert [(m.kind, m.media_id) for m in record.media] == [("audio", "media_v1")]


def test_voice_without_transcript_leaves_the_text_empty_for_an_agent() -> None:
    bare = parse_push(push("voice", "<MediaId>media_v2</MediaId><Format>amr</Format><MsgId>7</MsgId>"))
    assert isinstance(bare, Voice) and bare.recognition is None
    record = inbound(bare)
    assert record is not None and record.text == "" and record.media[0].media_id == "media_v2"


def test_image_keeps_pic_url_and_media_id() -> None:
    ours, theirs = parse_push(IMAGE), parse_message(IMAGE.decode())
    assert isinstance(ours, Image)
    assert (ours.pic_url, ours.media_id) == (theirs.image, theirs.media_id)
    record = inbound(ours)
    assert record is not None and record.media[0].url == "http://mmbiz.qpic.cn/abc"


def test_location_x_is_the_latitude_and_the_label_the_place() -> None:
    ours, theirs = parse_push(LOCATION), parse_message(LOCATION.decode())
    assert isinstance(ours, Location)
    assert (ours.latitude, ours.longitude) == tuple(float(v) for v in theirs.location) == (24.881301, 102.832891)
    assert (ours.scale, ours.label) == (15, "明湖市东湖区建设路18号")
    record = inbound(ours)
    assert record is not None
    assert (record.place_text, record.latitude, record.longitude) == ("明湖市东湖区建设路18号", 24.881301, 102.832891)
    assert record.wechat_openid == OPENID and record.raw["Label"] == "明湖市东湖区建设路18号"


def test_a_latitude_off_the_globe_is_refused() -> None:
    with pytest.raises(MalformedPush, match="Location_X"):
        parse_push(push("location", "<Location_X>91</Location_X><Location_Y>1</Location_Y><MsgId>1</MsgId>"))


def test_events_deduplicate_on_sender_and_time() -> None:
    sub = parse_push(push("event", "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey>"))
    assert isinstance(sub, Subscribe) and sub.external_id == f"{OPENID}:1700000000"
    assert inbound(sub) is None
    assert isinstance(parse_push(push("event", "<Event>unsubscribe</Event>")), Unsubscribe)
    click = parse_push(push("event", "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[STATUS]]></EventKey>"))
    assert isinstance(click, MenuClick) and click.key == "STATUS" == parse_message(
        push("event", "<Event>CLICK</Event><EventKey>STATUS</EventKey>").decode()).key
    done = parse_push(push("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID>"
                                    "<Status><![CDATA[failed:user block]]></Status>"))
    assert isinstance(done, TemplateSendFinished) and (done.msg_id, done.status) == (200163836, "failed:user block")


def test_other_types_parse_as_unsupported() -> None:
    video = parse_push(push("video", "<MediaId>m</MediaId><MsgId>9</MsgId>"))
    scan = parse_push(push("event", "<Event>SCAN</Event><EventKey>1</EventKey>"))
    assert isinstance(video, Unsupported) and video.kind == "video"
    assert isinstance(scan, Unsupported) and scan.kind == "event:SCAN"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><Content>&lol3;</Content></xml>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><Content>&secret;</Content></xml>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><a>1</a></xml>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["laughs", "entity", "dtd"])
def test_hostile_xml_is_refused_clearly(body: bytes) -> None:
    with pytest.raises(HostileXml, match="DTD or entities"):
        parse_xml(body)


@pytest.mark.parametrize(("body", "reason"), [
    (b"\xff\xfe<xml/>", "not UTF-8"),
    ("<xml><Content>占道</Content></xml>".encode("gbk"), "not UTF-8"),
    (b"<xml><Content>unclosed</xml>", "not well-formed"),
    (b"<html><body/></html>", "not <xml>"),
    (b"", "not well-formed"),
    (push("text", "<Content>no id</Content>"), "no MsgId"),
    (b"<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>", "no ToUserName"),
    (push("text", "<MsgId>1</MsgId>", create_time=0).replace(b"<CreateTime>0", b"<CreateTime>noon"), "CreateTime"),
])
def test_bodies_that_are_not_pushes_are_refused_saying_why(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedPush, match=reason):
        parse_push(body)


def test_an_oversized_body_is_refused_before_parsing() -> None:
    body = push("text", "<Content>" + "很" * MAX_PUSH_BYTES + "</Content><MsgId>1</MsgId>")
    with pytest.raises(PushTooLarge):
        parse_push(body)


def test_text_reply_is_what_wechatpy_would_render() -> None:
    message = parse_push(TEXT)
    ours = parse_xml(text_reply(message, "您的消息已收到（测试）", now=1700000005))
    theirs = parse_xml(create_reply("您的消息已收到（测试）", parse_message(TEXT.decode())).render().encode())
    ours.pop("CreateTime"), theirs.pop("CreateTime")
    assert ours == theirs
    assert (ours["ToUserName"], ours["FromUserName"], ours["MsgType"]) == (OPENID, "gh_mh12345", "text")


def test_text_reply_survives_a_cdata_terminator_and_control_characters() -> None:
    # wechatpy's renderer would emit broken XML for "]]>"; ours splits the CDATA section
    reply = parse_xml(text_reply(parse_push(TEXT), "编号]]>123\x01\x0b结束", now=1700000005))
    assert reply["Content"] == "编号]]>123结束"
