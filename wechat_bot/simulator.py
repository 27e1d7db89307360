"""A citizen's official-account messages, sent to a running hotline exactly as WeChat sends them.

``hotline wechat simulate --openid o123 --text "…"`` (or ``--image MEDIA_ID``, ``--location LABEL``, ``--menu
STATUS``) builds the push WeChat would build, signs it with the account's Token (``HOTLINE_WECHAT_TOKEN``) and, with
``--safe``, encrypts it with the EncodingAESKey as WeChat's safe mode does, posts it to ``/channels/wechat`` and
prints the passive reply the citizen would read. A newcomer runs it beside ``make run`` and watches the message
become a ticket on the agent desk (the ticket number then arrives as a customer-service message, which the demo's
fake WeChat API prints).
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import time
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET
import httpx

from wechat_bot.crypto import MessageCrypto, signature
from wechat_bot.messages import MENU_GUIDE, MENU_REPORT, MENU_STATUS, _cdata
from wechat_bot.routes import PATH
from wechat_bot.settings import WeChatSettings

ACCOUNT = "gh_hotline_demo"
MENUS = {"REPORT": MENU_REPORT, "STATUS": MENU_STATUS, "GUIDE": MENU_GUIDE}


@dataclass(frozen=True)
class Message:
    openid: str
    msg_type: str  # text | image | location | event
    fields: dict[str, str]

    def xml(self, now: int, msg_id: int) -> str:
        body = "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in self.fields.items())
        msg = "" if self.msg_type == "event" else f"<MsgId>{msg_id}</MsgId>"
        return (f"<xml><ToUserName>{_cdata(ACCOUNT)}</ToUserName><FromUserName>{_cdata(self.openid)}</FromUserName>"
                f"<CreateTime>{now}</CreateTime><MsgType>{_cdata(self.msg_type)}</MsgType>{body}{msg}</xml>")


def text(openid: str, content: str) -> Message:
    return Message(openid, "text", {"Content": content})


def image(openid: str, media_id: str) -> Message:
    return Message(openid, "image", {"PicUrl": f"http://mmbiz.qpic.cn/demo/{media_id}", "MediaId": media_id})


def location(openid: str, label: str, latitude: float, longitude: float) -> Message:
    return Message(openid, "location", {"Location_X": f"{latitude}", "Location_Y": f"{longitude}", "Scale": "16",
                                        "Label": label})


def menu(openid: str, key: str) -> Message:
    return Message(openid, "event", {"Event": "CLICK", "EventKey": key})


_msg_ids = itertools.count(int(time.time() * 1000) * 1000)


def next_msg_id() -> int:
    """A MsgId no earlier simulated push had (WeChat's are 64-bit numbers)."""
    return next(_msg_ids)


def push(settings: WeChatSettings, base_url: str, message: Message, *, safe: bool = False,
         http: httpx.Client | None = None, msg_id: int | None = None) -> str:
    """Post one signed (and with ``safe`` encrypted) push; returns the passive reply's text ("" for ``success``).
    ``msg_id``: the push's MsgId (default: a new one), which is the stored message's external id."""
    now, nonce = int(time.time()), secrets.token_hex(5)
    xml = message.xml(now, msg_id if msg_id is not None else next_msg_id()).encode()
    params = {"signature": signature(settings.token, str(now), nonce), "timestamp": str(now), "nonce": nonce,
              "openid": message.openid}
    crypto = None
    if safe:
        if not settings.aes_key:
            raise ValueError("safe mode needs HOTLINE_WECHAT_AES_KEY")
        crypto = MessageCrypto(settings.token, settings.appid, settings.aes_key)
        sealed = crypto.seal(xml, str(now), nonce)
        params.update(encrypt_type="aes", msg_signature=sealed.msg_signature)
        xml = (f"<xml><ToUserName>{_cdata(ACCOUNT)}</ToUserName><Encrypt>{_cdata(sealed.encrypted)}</Encrypt>"
               "</xml>").encode()
    client = http or httpx.Client(timeout=10)
    try:
        response = client.post(base_url.rstrip("/") + PATH, params=params, content=xml,
                               headers={"Content-Type": "text/xml"})
    finally:
        if http is None:
            client.close()
    if response.status_code != 200:
        raise RuntimeError(f"the hotline answered {response.status_code}: {response.text[:300]}")
    if response.content == b"success":
        return ""
    reply = SafeET.fromstring(response.content)
    if crypto is not None:
        opened = crypto.open(reply.findtext("Encrypt") or "", reply.findtext("MsgSignature") or "",
                             reply.findtext("TimeStamp") or "", reply.findtext("Nonce") or "")
        reply = SafeET.fromstring(opened.message)
    return reply.findtext("Content") or ""


def cmd_simulate(args: argparse.Namespace) -> int:
    openid = args.openid
    messages: list[Message] = []
    if args.text:
        messages.append(text(openid, args.text))
    if args.image:
        messages.append(image(openid, args.image))
    if args.location:
        messages.append(location(openid, args.location, args.latitude, args.longitude))
    if args.menu:
        messages.append(menu(openid, MENUS[args.menu]))
    if not messages:
        raise SystemExit("hotline wechat simulate: give --text, --image, --location or --menu")
    settings = WeChatSettings()
    for message in messages:
        reply = push(settings, args.url, message, safe=args.safe)
        print(f"公众号回复：{reply}" if reply else "公众号回复：（无，稍后以客服消息告知）")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wechat = sub.add_parser("wechat", help="the WeChat official-account channel").add_subparsers(
        dest="wechat_command", required=True)
    p = wechat.add_parser("simulate", help="send a citizen's signed WeChat push to a running server")
    p.add_argument("--openid", default="oDemoCitizen0000000000000001")
    p.add_argument("--text")
    p.add_argument("--image", metavar="MEDIA_ID")
    p.add_argument("--location", metavar="LABEL")
    p.add_argument("--latitude", type=float, default=30.27)
    p.add_argument("--longitude", type=float, default=120.15)
    p.add_argument("--menu", choices=sorted(MENUS))
    p.add_argument("--safe", action="store_true", help="encrypt as WeChat's safe mode does")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the hotline's base URL")
    p.set_defaults(func=cmd_simulate)
