"""What WeChat pushes to ``/channels/wechat`` and what we answer in the same HTTP response.

Parsing refuses before it interprets: a body over ``MAX_PUSH_BYTES``, bytes that are not UTF-8, any DTD (so no
entity expansion such as billion laughs and no external entities: WeChat never sends a DTD), XML that does not
parse, a root other than ``<xml>``, or a push without its sender, time and type. Each refusal is a
``MalformedPush`` whose message says what was wrong; nothing is stored for it. defusedxml does the XML.

Message types: text, voice (with WeChat's ``Recognition`` transcript when the account has it switched on), image
(``PicUrl`` and ``MediaId``), location (``Location_X`` is the latitude, ``Location_Y`` the longitude, ``Scale``,
``Label``); events subscribe, unsubscribe, menu ``CLICK`` and ``TEMPLATESENDJOBFINISH`` (the delivery report of a
template message). Anything else parses as ``Unsupported`` and is answered with ``success``.

WeChat retries a push it got no answer to within 5 s, up to three times, with the same content: ``external_id``
is the ``MsgId`` for messages and ``FromUserName:CreateTime`` for events, the key the intake deduplicates on.

Passive replies: ``text_reply`` (the XML a text answer is), ``encrypted_reply`` (its safe-mode envelope) and
``SUCCESS`` (the literal body ``success``: nothing to say now, do not retry).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from wechat_bot.crypto import SealedReply

MAX_PUSH_BYTES = 64 * 1024  # a text push is at most a few KiB; the envelope of a safe-mode one about 4/3 of it
SUCCESS = b"success"
MENU_REPORT = "REPORT"  # 我要反映
MENU_STATUS = "STATUS"  # 进度查询
MENU_GUIDE = "GUIDE"  # 办事指南
MENU = {
    "button": [
        {"type": "click", "name": "我要反映", "key": MENU_REPORT},
        {"type": "click", "name": "进度查询", "key": MENU_STATUS},
        {"type": "click", "name": "办事指南", "key": MENU_GUIDE},
    ]
}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class MalformedPush(ValueError):
    """A body that is not a push we can read (answered with 400, or 413 for ``PushTooLarge``); nothing is stored."""


class PushTooLarge(MalformedPush):
    pass


class HostileXml(MalformedPush):
    pass


def parse_xml(body: bytes, max_bytes: int = MAX_PUSH_BYTES) -> dict[str, str]:
    """The ``<xml>`` root's children as {tag: text} (the first of a repeated tag), or MalformedPush."""
    if len(body) > max_bytes:
        raise PushTooLarge(f"the body has {len(body)} bytes, more than the {max_bytes} a WeChat push may have")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPush(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise HostileXml(f"refused XML with a DTD or entities ({type(exc).__name__})") from None
    except SafeET.ParseError as exc:
        raise MalformedPush(f"the body is not well-formed XML ({exc})") from None
    if root.tag != "xml":
        raise MalformedPush(f"the root element is <{root.tag}>, not <xml>")
    fields: dict[str, str] = {}
    for child in root:
        fields.setdefault(child.tag, (child.text or "").strip() if len(child) == 0 else "")
    return fields


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise MalformedPush(f"the push has no {name}")
    return value


def _integer(fields: dict[str, str], name: str) -> int:
    value = _required(fields, name)
    try:
        return int(value)
    except ValueError:
        raise MalformedPush(f"{name} is not a whole number: {value[:30]!r}") from None


def _number(fields: dict[str, str], name: str, limit: float) -> float:
    value = _required(fields, name)
    try:
        number = float(value)
    except ValueError:
        raise MalformedPush(f"{name} is not a number: {value[:30]!r}") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise MalformedPush(f"{name} {value[:30]!r} is outside ±{limit:g}")
    return number


@dataclass(frozen=True, kw_only=True)
class Push:
    """The fields every push has; ``from_user`` is the citizen's openid, ``to_user`` the account's id."""

    to_user: str
    from_user: str
    create_time: int
    raw: dict[str, str] = field(repr=False)

    @property
    def external_id(self) -> str:
        """The deduplication key of an event (messages override it with their MsgId)."""
        return f"{self.from_user}:{self.create_time}"

    @property
    def received_at(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, UTC)


@dataclass(frozen=True, kw_only=True)
class Message(Push):
    msg_id: int

    @property
    def external_id(self) -> str:
        return str(self.msg_id)


@dataclass(frozen=True, kw_only=True)
class Text(Message):
    content: str


@dataclass(frozen=True, kw_only=True)
class Voice(Message):
    media_id: str
    format: str
    recognition: str | None


@dataclass(frozen=True, kw_only=True)
class Image(Message):
    pic_url: str
    media_id: str


@dataclass(frozen=True, kw_only=True)
class Location(Message):
    latitude: float
    longitude: float
    scale: int | None
    label: str


@dataclass(frozen=True, kw_only=True)
class Subscribe(Push):
    scene: str  # "qrscene_…" when the citizen followed by scanning a parametric QR code, else ""


@dataclass(frozen=True, kw_only=True)
class Unsubscribe(Push):
    pass


@dataclass(frozen=True, kw_only=True)
class MenuClick(Push):
    key: str


@dataclass(frozen=True, kw_only=True)
class TemplateSendFinished(Push):
    msg_id: int
    status: str  # "success", "failed:user block", "failed: system failed"


@dataclass(frozen=True, kw_only=True)
class Unsupported(Push):
    kind: str  # MsgType, or "event:<Event>"


def parse_push(body: bytes, max_bytes: int = MAX_PUSH_BYTES) -> Push:
    """A pushed message or event from its (decrypted) XML, or MalformedPush."""
    return push_from_fields(parse_xml(body, max_bytes))


def push_from_fields(f: dict[str, str]) -> Push:
    to, sender, at = _required(f, "ToUserName"), _required(f, "FromUserName"), _integer(f, "CreateTime")
    kind = _required(f, "MsgType")
    if kind == "event":
        event = _required(f, "Event")
        if event == "subscribe":
            return Subscribe(to_user=to, from_user=sender, create_time=at, raw=f, scene=f.get("EventKey", ""))
        if event == "unsubscribe":
            return Unsubscribe(to_user=to, from_user=sender, create_time=at, raw=f)
        if event == "CLICK":
            return MenuClick(to_user=to, from_user=sender, create_time=at, raw=f, key=_required(f, "EventKey"))
        if event == "TEMPLATESENDJOBFINISH":
            return TemplateSendFinished(to_user=to, from_user=sender, create_time=at, raw=f,
                                        msg_id=_integer(f, "MsgID"), status=f.get("Status", ""))
        return Unsupported(to_user=to, from_user=sender, create_time=at, raw=f, kind=f"event:{event}")
    if kind not in ("text", "voice", "image", "location"):
        return Unsupported(to_user=to, from_user=sender, create_time=at, raw=f, kind=kind)
    msg_id = _integer(f, "MsgId")
    if kind == "text":
        return Text(to_user=to, from_user=sender, create_time=at, raw=f, msg_id=msg_id, content=f.get("Content", ""))
    if kind == "voice":
        return Voice(to_user=to, from_user=sender, create_time=at, raw=f, msg_id=msg_id,
                     media_id=_required(f, "MediaId"), format=f.get("Format", ""),
                     recognition=f.get("Recognition") or None)
    if kind == "image":
        return Image(to_user=to, from_user=sender, create_time=at, raw=f, msg_id=msg_id,
                     pic_url=f.get("PicUrl", ""), media_id=_required(f, "MediaId"))
    scale = f.get("Scale", "")
    return Location(to_user=to, from_user=sender, create_time=at, raw=f, msg_id=msg_id,
                    latitude=_number(f, "Location_X", 90), longitude=_number(f, "Location_Y", 180),
                    scale=int(scale) if scale.isdigit() else None, label=f.get("Label", ""))


@dataclass(frozen=True)
class Envelope:
    """A safe-mode push before decryption."""

    to_user: str
    encrypted: str


def parse_envelope(body: bytes, max_bytes: int = MAX_PUSH_BYTES) -> Envelope:
    fields = parse_xml(body, max_bytes)
    return Envelope(to_user=fields.get("ToUserName", ""), encrypted=_required(fields, "Encrypt"))


@dataclass(frozen=True)
class MediaRef:
    """A file the citizen sent, still on WeChat's side: fetch it with ``WeChatClient.download_media(media_id)``
    (WeChat keeps it three days). ``url`` is the image's temporary PicUrl."""

    kind: Literal["image", "audio"]
    media_id: str
    url: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class Inbound:
    """What a text, voice, image or location push contributes to the intake (channel "wechat").

    A voice message's text is WeChat's transcript when there is one; the audio is attached either way, so an
    agent can listen when the transcript is doubtful or missing. A location's Label is the place text.
    """

    external_id: str
    wechat_openid: str
    text: str
    place_text: str | None
    latitude: float | None
    longitude: float | None
    media: tuple[MediaRef, ...]
    received_at: datetime
    raw: dict[str, str]


def inbound(push: Push) -> Inbound | None:
    """The intake's view of a citizen's message; None for events and unsupported types."""

    def make(text: str, media: tuple[MediaRef, ...] = (), place_text: str | None = None,
             latitude: float | None = None, longitude: float | None = None) -> Inbound:
        return Inbound(external_id=push.external_id, wechat_openid=push.from_user, text=text, place_text=place_text,
                       latitude=latitude, longitude=longitude, media=media, received_at=push.received_at,
                       raw=dict(push.raw))

    if isinstance(push, Text):
        return make(push.content)
    if isinstance(push, Voice):
        return make(push.recognition or "", (MediaRef("audio", push.media_id, format=push.format or None),))
    if isinstance(push, Image):
        return make("", (MediaRef("image", push.media_id, url=push.pic_url or None),))
    if isinstance(push, Location):
        return make(push.label, place_text=push.label or None, latitude=push.latitude, longitude=push.longitude)
    return None


def _cdata(value: str) -> str:
    clean = _XML_ILLEGAL.sub("", value)
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(push: Push, content: str, now: int) -> bytes:
    """The passive text reply to a push: to the citizen, from the account."""
    return (
        f"<xml><ToUserName>{_cdata(push.from_user)}</ToUserName><FromUserName>{_cdata(push.to_user)}</FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{_cdata(content)}</Content></xml>"
    ).encode()


def encrypted_reply(sealed: SealedReply) -> bytes:
    """The safe-mode envelope around an encrypted passive reply."""
    return (
        f"<xml><Encrypt>{_cdata(sealed.encrypted)}</Encrypt><MsgSignature>{_cdata(sealed.msg_signature)}"
        f"</MsgSignature><TimeStamp>{int(sealed.timestamp)}</TimeStamp><Nonce>{_cdata(sealed.nonce)}</Nonce></xml>"
    ).encode()
