"""The WeChat channel plugged into a running hotline: the route, the worker's handler and the outbox sender.

The entry points call these: ``hotline.app`` calls ``mount(app, services)``, ``hotline.worker`` registers
``handler(services)`` and ``sender(services)``. With ``HOTLINE_WECHAT_ENABLED=false`` there is no route and no
sender (notices for WeChat tickets then wait in the outbox).
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from fastapi import FastAPI, Request
from sqlalchemy import update
from sqlalchemy.orm import Session

from hotline import outbox
from hotline.models import OutboxMessage
from hotline.services import Services
from wechat_bot.channel import CHANNEL, WeChatHandler, accept, lookup_status
from wechat_bot.client import WeChatClient
from wechat_bot.messages import TemplateSendFinished
from wechat_bot.routes import wechat_router
from wechat_bot.sender import WeChatSender


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


def sender(services: Services) -> WeChatSender | None:
    """The outbox sender, sharing the access token through Redis when the deployment has Redis."""
    settings = services.settings.wechat
    if not settings.enabled:
        return None
    redis_url = services.settings.redis_url
    client = WeChatClient.from_settings(settings, redis.Redis.from_url(redis_url) if redis_url else None)
    return WeChatSender(client, settings.notice_template_id)
