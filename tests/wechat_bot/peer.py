"""WeChat's side of ``/channels/wechat`` for the acceptance tests: pushes as WeChat builds, signs and encrypts them.

The plain signature is computed here from WeChat's documentation (SHA-1 over the sorted token, timestamp and
nonce); safe mode is encrypted by wechatpy, the reference implementation, not by the code under test.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass, field

import defusedxml.ElementTree as SafeET
from fastapi.testclient import TestClient
from httpx import Response
from wechatpy.crypto import WeChatCrypto

XML = {"Content-Type": "text/xml"}
ACCOUNT = "gh_mh12345"
_msg_ids = itertools.count(24_000_000_000_000_000)


def next_msg_id() -> int:
    return next(_msg_ids)


def sign(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def push_xml(sender: str, msg_type: str, body: str, create_time: int | None = None) -> str:
    at = int(time.time()) if create_time is None else create_time
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
            f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>")


def text_xml(sender: str, content: str, msg_id: int | None = None, create_time: int | None = None) -> str:
    msg = next_msg_id() if msg_id is None else msg_id
    return push_xml(sender, "text", f"<Content><![CDATA[{content}]]></Content><MsgId>{msg}</MsgId>", create_time)


def image_xml(sender: str, media_id: str, create_time: int | None = None) -> str:
    return push_xml(sender, "image", f"<PicUrl><![CDATA[http://mmbiz.qpic.cn/{media_id}]]></PicUrl>"
                    f"<MediaId><![CDATA[{media_id}]]></MediaId><MsgId>{next_msg_id()}</MsgId>", create_time)


def location_xml(sender: str, label: str, lat: float = 30.27, lng: float = 120.15,
                 create_time: int | None = None) -> str:
    return push_xml(sender, "location", f"<Location_X>{lat}</Location_X><Location_Y>{lng}</Location_Y>"
                    f"<Scale>16</Scale><Label><![CDATA[{label}]]></Label><MsgId>{next_msg_id()}</MsgId>", create_time)


def voice_xml(sender: str, media_id: str, recognition: str = "", create_time: int | None = None) -> str:
    said = f"<Recognition><![CDATA[{recognition}]]></Recognition>" if recognition else ""
    return push_xml(sender, "voice", f"<MediaId><![CDATA[{media_id}]]></MediaId><Format><![CDATA[amr]]></Format>"
                    f"{said}<MsgId>{next_msg_id()}</MsgId>", create_time)


def click_xml(sender: str, key: str) -> str:
    return push_xml(sender, "event", f"<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[{key}]]></EventKey>")


@dataclass
class WeChat:
    """Pushes to the app as WeChat does, with the account's token, AppID and EncodingAESKey."""

    client: TestClient
    token: str
    appid: str
    aes_key: str
    sent: list[str] = field(default_factory=list)

    def params(self, timestamp: int | None = None, token: str | None = None) -> dict[str, str]:
        ts, nonce = str(int(time.time()) if timestamp is None else timestamp), secrets.token_hex(5)
        return {"signature": sign(token or self.token, ts, nonce), "timestamp": ts, "nonce": nonce}

    def post(self, xml: str, **params: str) -> Response:
        self.sent.append(xml)
        return self.client.post("/channels/wechat", params={**self.params(), **params}, content=xml.encode(),
                                headers=XML)

    def post_encrypted(self, xml: str) -> Response:
        ts, nonce = str(int(time.time())), secrets.token_hex(5)
        envelope = SafeET.fromstring(WeChatCrypto(self.token, self.aes_key, self.appid)
                                     .encrypt_message(xml, nonce, ts))
        body = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                f"<Encrypt><![CDATA[{envelope.findtext('Encrypt')}]]></Encrypt></xml>")
        params = {"signature": sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
                  "msg_signature": envelope.findtext("MsgSignature") or ""}
        return self.client.post("/channels/wechat", params=params, content=body.encode(), headers=XML)

    def decrypt_reply(self, response: Response) -> str:
        """The text of a safe-mode passive reply, opened by wechatpy as WeChat would."""
        envelope = SafeET.fromstring(response.content)
        plain = WeChatCrypto(self.token, self.aes_key, self.appid).decrypt_message(
            response.content, envelope.findtext("MsgSignature"), envelope.findtext("TimeStamp"),
            envelope.findtext("Nonce"))
        return SafeET.fromstring(plain).findtext("Content") or ""


def reply_text(response: Response) -> str:
    """The Content of a plain passive reply."""
    return SafeET.fromstring(response.content).findtext("Content") or ""
