"""``/channels/wechat``: the server URL of the city's official account.

``wechat_router`` builds the routes from what the hotline gives it, so this package needs nothing of hotline's:
the intake's ``accept(session, inbound)`` (stores the message durably under (channel, external_id) and says
whether it had it already; the route commits), a session dependency, and ``lookup_status(session, openid,
number)``, which must return only the tickets of that openid (``number`` None: the citizen's recent ones).

- ``GET``: WeChat's URL verification. A fresh timestamp and a valid signature -> ``echostr`` back; else 403.
- ``POST``: a pushed message or event, plain, or encrypted when the request says ``encrypt_type=aes``.
  Refusals, each logged with its reason and nothing stored: a content type other than XML -> 415, a body over the
  limit -> 413, a stale timestamp or a forged signature (``signature``, or ``msg_signature`` in safe mode), a
  message we cannot decrypt, or safe mode without an EncodingAESKey -> 403, hostile or malformed XML -> 400.
- Citizens' messages (text, voice, image, location) go to ``accept`` and are answered at once with a short
  "received, registering" note: the ticket number comes later from the worker, through the outbox's
  customer-service message. WeChat's retries of the same MsgId reach ``accept`` again, which recognises them, and
  get the same answer. If ``accept`` fails (the database is down), the request fails and WeChat retries it.
- ``throttle`` (optional): pushes per sending address are counted before the body is read (over the limit: 429
  with ``Retry-After``), a citizen's messages per openid after it is verified; a citizen over the limit is answered
  with ``texts.too_many`` (HTTP 200, so WeChat does not retry) and the message is not stored.
- ``查询 <受理编号>`` (also 查进度 / 进度查询) and the 进度查询 menu answer from ``lookup_status`` with the
  sender's openid, never a number alone; subscribe answers with the welcome, the 我要反映 and 办事指南 menus with
  their texts. ``TEMPLATESENDJOBFINISH`` goes to ``on_delivery_report`` when given (the outbox's delivery status).
  Everything else is answered ``success``.
- Plain mode signs only the token, timestamp and nonce, not the body; safe mode's msg_signature covers the
  message. A city that can should run the account in safe mode.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from wechat_bot import texts as say
from wechat_bot.crypto import MessageCrypto, Opened, Refused, check_timestamp, verify_signature
from wechat_bot.messages import (
    MAX_PUSH_BYTES,
    MENU_GUIDE,
    MENU_REPORT,
    MENU_STATUS,
    SUCCESS,
    Image,
    Inbound,
    Location,
    MalformedPush,
    MenuClick,
    Push,
    PushTooLarge,
    Subscribe,
    TemplateSendFinished,
    Text,
    Unsupported,
    Voice,
    encrypted_reply,
    inbound,
    parse_envelope,
    parse_push,
    text_reply,
)
from wechat_bot.settings import WeChatSettings
from wechat_bot.texts import DEFAULT_TEXTS, Texts, TicketStatus

log = logging.getLogger(__name__)
PATH = "/channels/wechat"
#: how the OpenAPI document describes a refusal here (400, 403, 413, 415): its reason in plain text
PLAIN_REFUSALS: dict[int | str, dict[str, object]] = {"4XX": {
    "description": "refused: the reason in plain text", "content": {"text/plain": {"schema": {"type": "string"}}}}}
XML_TYPES = ("text/xml", "application/xml")
STATUS_QUERY = re.compile(r"^\s*(?:查询|查进度|进度查询)\s*[:：]?\s*(\d{6,20})?\s*$")


class Accepted(Protocol):
    @property
    def inbound_id(self) -> int: ...

    @property
    def duplicate(self) -> bool: ...


AcceptFn = Callable[[Session, Inbound], Accepted]
#: (limit name, client) -> None when allowed, else the seconds to wait (the hotline's rate limits)
Throttle = Callable[[str, str], int | None]
StatusLookup = Callable[[Session, str, str | None], Sequence[TicketStatus]]
DeliveryReport = Callable[[Session, TemplateSendFinished], None]


def status_query(text: str) -> tuple[bool, str | None]:
    """("查询 20260101000123") -> (True, "20260101000123"); ("查询") -> (True, None); other text -> (False, None)."""
    match = STATUS_QUERY.match(unicodedata.normalize("NFKC", text))
    return (True, match.group(1)) if match else (False, None)


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def wechat_router(settings: WeChatSettings, accept: AcceptFn, session: Callable[..., Any],
                  lookup_status: StatusLookup, on_delivery_report: DeliveryReport | None = None,
                  texts: Texts = DEFAULT_TEXTS, clock: Callable[[], float] = time.time,
                  max_body_bytes: int = MAX_PUSH_BYTES, throttle: Throttle | None = None) -> APIRouter:
    """The GET and POST routes of ``/channels/wechat`` (see the module docstring)."""
    crypto = (MessageCrypto(settings.token, settings.appid, settings.aes_key, settings.previous_aes_key)
              if settings.aes_key else None)
    window = settings.timestamp_window_seconds
    router = APIRouter(tags=["channels"])

    def refuse(request: Request, status: int, reason: str) -> PlainTextResponse:
        client = request.client.host if request.client else "?"
        log.warning("wechat: refused %s from %s with %d: %s", request.method, client, status, reason)
        return PlainTextResponse(reason, status_code=status)

    # the verification answer is plain text (echostr); a refusal of the signature or the body is its reason in plain
    # text (what WeChat's console shows); a malformed query is JSON like every other 422 of the app
    @router.get(PATH, response_class=PlainTextResponse, responses={422: {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorOut"}}}}, **PLAIN_REFUSALS})
    def verify(request: Request, signature: str = "", timestamp: str = "", nonce: str = "",
               echostr: str = "") -> Response:
        try:
            check_timestamp(timestamp, clock(), window)
            verify_signature(settings.token, signature, timestamp, nonce)
        except Refused as exc:
            return refuse(request, 403, str(exc))
        return PlainTextResponse(echostr)

    def reply_text(db: Session, push: Push) -> str | None:
        if isinstance(push, Text):
            asked, number = status_query(push.content)
            if asked:
                found = lookup_status(db, push.from_user, number)
                return say.not_found(number, texts) if number and not found else say.status_answer(found, texts)
        if isinstance(push, Text | Voice | Image | Location):
            record = inbound(push)
            assert record is not None
            accepted = accept(db, record)
            db.commit()
            log.info("wechat: message %s stored as inbound %d%s", record.external_id, accepted.inbound_id,
                     " (a retry)" if accepted.duplicate else "")
            return texts.received
        if isinstance(push, Subscribe):
            return say.welcome(texts)
        if isinstance(push, MenuClick):
            if push.key == MENU_REPORT:
                return texts.how_to_report
            if push.key == MENU_GUIDE:
                return texts.guide
            if push.key == MENU_STATUS:
                return say.status_answer(lookup_status(db, push.from_user, None), texts)
            return None
        if isinstance(push, TemplateSendFinished):
            if on_delivery_report is not None:
                on_delivery_report(db, push)
                db.commit()
            return None
        if isinstance(push, Unsupported) and not push.kind.startswith("event:"):
            return texts.unsupported
        return None

    def read(body: bytes, params: dict[str, str]) -> tuple[Push, Opened | None]:
        try:
            check_timestamp(params.get("timestamp", ""), clock(), window)
            encrypt_type = params.get("encrypt_type", "raw") or "raw"
            if encrypt_type == "aes":
                if crypto is None:
                    raise _Refusal(403, "safe mode (encrypt_type=aes) but no EncodingAESKey is configured")
                envelope = parse_envelope(body, max_body_bytes)
                opened = crypto.open(envelope.encrypted, params.get("msg_signature", ""),
                                     params.get("timestamp", ""), params.get("nonce", ""))
                return parse_push(opened.message, max_body_bytes), opened
            if encrypt_type != "raw":
                raise _Refusal(400, f"unknown encrypt_type {encrypt_type[:20]!r}")
            verify_signature(settings.token, params.get("signature", ""), params.get("timestamp", ""),
                             params.get("nonce", ""))
            return parse_push(body, max_body_bytes), None
        except Refused as exc:
            raise _Refusal(403, str(exc)) from None
        except PushTooLarge as exc:
            raise _Refusal(413, str(exc)) from None
        except MalformedPush as exc:
            raise _Refusal(400, str(exc)) from None

    @router.post(PATH, response_class=Response, responses={200: {
        "description": "``success``, or the passive reply to the citizen (XML)",
        "content": {"text/plain": {"schema": {"type": "string"}}, "application/xml": {"schema": {"type": "string"}}}},
        **PLAIN_REFUSALS})
    async def receive(request: Request, db: Session = Depends(session)) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in XML_TYPES:
            return refuse(request, 415, f"a WeChat push is XML, not {content_type or 'untyped'}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return refuse(request, 413, f"the body is larger than {max_body_bytes} bytes")
        address = request.client.host if request.client else "unknown"
        if throttle is not None and (wait := await run_in_threadpool(throttle, "wechat_address", address)):
            response = refuse(request, 429, f"too many pushes from this address; retry in {wait} s")
            response.headers["Retry-After"] = str(wait)
            return response
        body = await request.body()
        try:
            push, opened = read(body, dict(request.query_params))
        except _Refusal as refusal:
            return refuse(request, refusal.status, refusal.reason)
        wait = None
        if throttle is not None and isinstance(push, Text | Voice | Image | Location):
            wait = await run_in_threadpool(throttle, "wechat_openid", push.from_user)
        if wait:
            # answered, not refused: WeChat retries a failed push (three times) and then shows the citizen
            # "该公众号暂时无法提供服务"; a reply tells the citizen what happened, and nothing is stored
            log.warning("wechat: %s sends too many messages; not stored, retry in %d s", push.from_user[:8], wait)
            answer: str | None = texts.too_many.format(minutes=max(1, -(-wait // 60)))
        else:
            answer = await run_in_threadpool(reply_text, db, push)
        if answer is None:
            return Response(SUCCESS, media_type="text/plain")
        now = int(clock())
        xml = text_reply(push, answer, now)
        if opened is not None and crypto is not None:
            xml = encrypted_reply(crypto.seal(xml, str(now), secrets.token_hex(8), opened.cipher))
        return Response(xml, media_type="application/xml")

    return router
