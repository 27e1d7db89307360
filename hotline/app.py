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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_ui.web import mount as mount_desk
from hotline.api import ROUTERS as API_ROUTERS
from hotline.errors import DomainError, validation_texts
from hotline.services import Services, build_services, follow_config_changes, follow_tickets
from hotline.settings import Settings, get_settings

log = logging.getLogger(__name__)


class BodyLimit:
    """Refuse request bodies over the limit with 413, whether or not the client announced the length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"提交的内容太大（上限 {self.limit} 字节）",
             "message": f"request body is larger than {self.limit} bytes"},
            status_code=413
        )
        await response({"type": "http"}, _empty_receive, send)


class _BodyTooLarge(Exception):
    pass


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    # ``detail`` is for people (Chinese), ``message`` the English for machines and logs (hotline.errors)
    return JSONResponse({**exc.detail, "detail": exc.people, "message": exc.message}, status_code=exc.status_code,
                        headers=headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    people, english, errors = validation_texts(exc.errors())
    return JSONResponse({"detail": people, "message": english, "errors": errors}, status_code=422)


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

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
