"""The application factory: the one place (with the worker and the CLI) that wires everything together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from agent_ui.web import mount as mount_desk
from channels.forum.backend import mount_forum
from channels.open311.backend import mount_open311
from channels.phone.mount import PhoneProbe, mount_phone
from channels.simulate import ForumProbe, Open311Probe
from hotline import metrics
from hotline.api import ROUTERS as API_ROUTERS
from hotline.db_errors import HANDLERS as DATABASE_ERROR_HANDLERS
from hotline.errors import ERROR_RESPONSES, DomainError, TooMany, describe_validation
from hotline.logs import RequestId
from hotline.middleware import BodyLimit, NoSniff
from hotline.services import (
    Services,
    build_long_lived_services,
    build_services,
    follow_config_changes,
    follow_tickets,
)
from hotline.settings import Settings, get_settings
from wechat_bot.web import WeChatProbe
from wechat_bot.web import mount as mount_wechat

log = logging.getLogger(__name__)


def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if isinstance(exc, TooMany):
        headers = {"Retry-After": str(exc.retry_after)}
    # ``detail`` is for people (Chinese), ``message`` the English for machines and logs (hotline.errors)
    return JSONResponse({**exc.detail, "detail": exc.people, "message": exc.message}, status_code=exc.status_code,
                        headers=headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail, english, errors = describe_validation(exc.errors())
    return JSONResponse({"detail": detail, "message": english, "errors": errors}, status_code=422)


def create_served_app() -> FastAPI:
    """``hotline serve``'s factory: the app of one serving process, its lasting heap settled."""
    settings = get_settings()
    return create_app(settings, build_long_lived_services(settings))


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or get_settings()
    services = services or build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[Any]] = []
        metrics.process_started("api")
        if settings.runs_embedded_worker:
            from hotline.worker import run_embedded

            tasks.append(asyncio.create_task(run_embedded(services)))
        for start in app.state.startup_hooks:
            tasks.append(asyncio.create_task(start(services)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await services.bus.close()
            await services.close_accept_engine()
            if services.numbers is not None:
                with contextlib.suppress(Exception):  # a gap in the day's numbers if the database is gone
                    services.numbers.close()
            metrics.process_stopping()

    app = FastAPI(
        title="12345 政务服务便民热线",
        description="One intake point, classification, routing under working-time deadlines, a live desk.",
        version="0.1.0",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.services = services
    app.state.startup_hooks = [follow_config_changes]
    if hasattr(services.suggester, "remember"):
        app.state.startup_hooks.append(follow_tickets)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for database_error, handler in DATABASE_ERROR_HANDLERS.items():
        app.add_exception_handler(database_error, handler)
    for router in API_ROUTERS:
        app.include_router(router)

    mount_desk(app, services)
    mount_forum(app, services)
    mount_open311(app, services)
    mount_phone(app, services)
    mount_wechat(app, services)
    # the admin desk's channels tab: each outside channel's state and 测试 request (hotline.channel_probes)
    services.channel_probes.update({probe.channel: probe for probe in (
        PhoneProbe(settings.phone), WeChatProbe(settings.wechat), ForumProbe(settings.forum),
        Open311Probe(settings.open311))})

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(NoSniff)
    app.add_middleware(metrics.HttpMetrics)
    app.add_middleware(RequestId)  # outermost: every answer, a 413 too, carries the request id
    return app
