"""The WeChat channel plugged into a running hotline: the route, the worker's handler and the outbox sender.

The entry points call these: ``hotline.app`` calls ``mount(app, services)``, ``hotline.worker`` registers
``handler(services)``, ``sender(services)`` and ``fetcher(services)``. With ``HOTLINE_WECHAT_ENABLED=false`` there
is no route, no sender and no fetcher (notices and photos of WeChat tickets then wait).
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from fastapi import FastAPI, Request
from sqlalchemy import update
from sqlalchemy.orm import Session

from hotline import attachments, outbox
from hotline.models import OutboxMessage
from hotline.services import Services
from wechat_bot.channel import CHANNEL, WeChatHandler, accept, lookup_status
from wechat_bot.client import WeChatClient
from wechat_bot.media import make_fetcher
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
