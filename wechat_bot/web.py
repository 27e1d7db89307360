"""The WeChat channel plugged into a running hotline: the route, the worker's handler and the outbox sender.

The entry points call these: ``hotline.app`` calls ``mount(app, services)``, ``hotline.worker`` registers
``handler(services)``, ``sender(services)`` and ``fetcher(services)``. With ``HOTLINE_WECHAT_ENABLED=false`` there
is no route, no sender and no fetcher (notices and photos of WeChat tickets then wait).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import redis
from fastapi import FastAPI, Request
from sqlalchemy import update
from sqlalchemy.orm import Session

from hotline import attachments, outbox
from hotline.channel_probes import Address, ChannelStatus, ProbeRequest, ProbeResult, public_url, setting
from hotline.models import OutboxMessage
from hotline.services import Services
from wechat_bot import settings as wechat_settings
from wechat_bot import simulator
from wechat_bot.channel import CHANNEL, WeChatHandler, accept, lookup_status
from wechat_bot.client import WeChatClient
from wechat_bot.media import make_fetcher
from wechat_bot.messages import TemplateSendFinished
from wechat_bot.routes import PATH, wechat_router
from wechat_bot.sender import WeChatSender
from wechat_bot.settings import WeChatSettings


def _session(request: Request) -> Iterator[Session]:
    services: Services = request.app.state.services
    session = services.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def delivery_report(session: Session, report: TemplateSendFinished) -> None:
    """WeChat's delivery report of a template message: a refusal parks its outbox row as failed, with the reason."""
    if report.status == "success":
        return
    session.execute(update(OutboxMessage)
                    .where(OutboxMessage.channel == CHANNEL, OutboxMessage.provider_id == f"template:{report.msg_id}")
                    .values(state=outbox.FAILED, last_error=f"WeChat delivery report: {report.status}"[:4000]))


def mount(app: FastAPI, services: Services) -> None:
    """``/channels/wechat`` on the app, with the real intake."""
    settings = services.settings.wechat
    if settings.enabled:
        app.include_router(wechat_router(settings, accept, _session, lookup_status, delivery_report,
                                         throttle=services.rate_limiter.webhook))


def handler(services: Services) -> WeChatHandler:
    return WeChatHandler(services.knowledge_search)


def _client(services: Services) -> WeChatClient | None:
    """An API client sharing the access token through Redis when the deployment has Redis (else in the process)."""
    settings = services.settings.wechat
    if not settings.enabled:
        return None
    redis_url = services.settings.redis_url
    return WeChatClient.from_settings(settings, redis.Redis.from_url(redis_url) if redis_url else None)


def sender(services: Services) -> WeChatSender | None:
    """The outbox sender."""
    client = _client(services)
    return None if client is None else WeChatSender(client, services.settings.wechat.notice_template_id)


def fetcher(services: Services) -> attachments.Fetcher | None:
    """The attachment store's fetcher of photos and voice messages."""
    client = _client(services)
    return None if client is None else make_fetcher(client)


class WeChatProbe:
    """The channels tab's view of the official account (``hotline.channel_probes``): the server URL to enter in
    the account's 服务器配置, the settings' state, and a test push signed with the Token as WeChat signs it."""

    channel = CHANNEL
    label = "微信公众号"

    def __init__(self, settings: WeChatSettings) -> None:
        self.settings = settings

    def status(self, public_base_url: str) -> ChannelStatus:
        s = self.settings
        return ChannelStatus(
            enabled=s.enabled,
            addresses=(Address("服务器地址（URL），填入公众号后台“服务器配置”", public_url(public_base_url, PATH)),),
            settings=(setting("HOTLINE_WECHAT_TOKEN", s.token, wechat_settings.DEMO_TOKEN),
                      setting("HOTLINE_WECHAT_APPID", s.appid, wechat_settings.DEMO_APPID, secret=False),
                      setting("HOTLINE_WECHAT_AES_KEY", s.aes_key, wechat_settings.DEMO_AES_KEY),
                      setting("HOTLINE_WECHAT_SECRET", s.secret, wechat_settings.DEMO_SECRET),
                      setting("HOTLINE_WECHAT_NOTICE_TEMPLATE_ID", s.notice_template_id, secret=False)),
            note="" if s.enabled else "HOTLINE_WECHAT_ENABLED 为关闭：公众号消息不会进入热线",
        )

    def test(self, server_url: str, request: ProbeRequest) -> ProbeResult:
        """A citizen's text push, signed (and in safe mode encrypted) exactly as WeChat sends it."""
        if not self.settings.enabled:
            return ProbeResult(False, None, error="微信公众号渠道未开通（HOTLINE_WECHAT_ENABLED）")
        openid = request.sender or "oAdminChannelTest000000000001"
        msg_id = simulator.next_msg_id()
        safe = bool(self.settings.aes_key)
        try:
            reply = simulator.push(self.settings, server_url, simulator.text(openid, request.text), safe=safe,
                                   msg_id=msg_id)
        except (RuntimeError, httpx.HTTPError) as exc:
            return ProbeResult(False, None, error=f"公众号接口没有接受测试消息：{exc}")
        mode = "安全模式（加密）" if safe else "明文模式"
        return ProbeResult(True, 200, reply=reply or "（success，稍后以客服消息告知）", external_id=str(msg_id),
                           steps=[f"POST {PATH}（{mode}，openid {openid}）→ 200"])
