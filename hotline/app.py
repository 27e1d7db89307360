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
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from agent_ui.web import mount as mount_desk
from channels.forum.backend import mount_forum
from channels.open311.backend import mount_open311
from channels.phone.mount import PhoneProbe, mount_phone
from channels.simulate import ForumProbe, Open311Probe
from hotline.api import ROUTERS as API_ROUTERS
from hotline.errors import ERROR_RESPONSES, DomainError, TooMany, describe_validation
from hotline.middleware import BodyLimit, NoSniff
from hotline.services import Services, build_services, follow_config_changes, follow_tickets
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


def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("integrity error: %s", exc)
    return JSONResponse({"detail": "与已有数据冲突（重复，或引用的内容不存在）",
                         "message": "this conflicts with existing data (duplicate or missing reference)"}, 409)


def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("value refused by the database: %s", exc)
    return JSONResponse({"detail": "有数值超出范围或无法保存，请检查数字和文字",
                         "message": "a value is out of range or cannot be stored (check numbers and text)"}, 422)


def _busy_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database busy: %s", exc)
    return JSONResponse({"detail": "系统繁忙，请稍后重试", "message": "the database is busy; try again in a moment"},
                        503, headers={"Retry-After": "1"})


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or get_settings()
    services = services or build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[Any]] = []
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
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _busy_error)
    for router in API_ROUTERS:
        app.include_router(router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

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
    return app
