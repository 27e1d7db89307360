"""What the API answers when the database refuses a statement or cannot be reached (the app's exception handlers).

Every answer is an ``ErrorOut`` (Chinese ``detail``, English ``message``), never a 500 with a traceback:
- a constraint (duplicate, missing reference) → 409; a value the column cannot hold → 422;
- the database cannot be reached (PostgreSQL down or restarting, the connection lost) → 503 with ``Retry-After``.
  The engine's bounded connect timeout (``hotline.db.CONNECT_TIMEOUT_SECONDS``) makes this answer come in seconds,
  and its pre-ping reconnects by itself once the server is back, so the service needs no restart;
- the database is there but busy (SQLite locked, a deadlock, no pooled connection free in time) → 503 too, with a
  shorter ``Retry-After``: trying again is the right thing in both cases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from hotline.db import database_unreachable

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_AFTER_SECONDS = 5
BUSY_RETRY_AFTER_SECONDS = 1


def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("integrity error: %s", exc)
    return JSONResponse({"detail": "与已有数据冲突（重复，或引用的内容不存在）",
                         "message": "this conflicts with existing data (duplicate or missing reference)"}, 409)


def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("value refused by the database: %s", exc)
    return JSONResponse({"detail": "有数值超出范围或无法保存，请检查数字和文字",
                         "message": "a value is out of range or cannot be stored (check numbers and text)"}, 422)


def unavailable_response() -> JSONResponse:
    return JSONResponse({"detail": "数据库暂时不可用，请稍后重试",
                         "message": "the database is unavailable; try again shortly"},
                        503, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)})


def _connection_error(request: Request, exc: Exception) -> JSONResponse:
    if database_unreachable(exc):
        log.warning("database unreachable during %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return unavailable_response()
    if isinstance(exc, InterfaceError):  # a misuse of the driver on a working connection is a bug: a real 500
        raise exc
    log.warning("database busy: %s", exc)
    return JSONResponse({"detail": "系统繁忙，请稍后重试", "message": "the database is busy; try again in a moment"},
                        503, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})


def _pool_timeout(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("no database connection free in time: %s", exc)
    return JSONResponse({"detail": "系统繁忙，请稍后重试", "message": "every database connection is busy; try again"},
                        503, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})


HANDLERS: dict[type[Exception], Callable[[Request, Exception], JSONResponse]] = {
    IntegrityError: _integrity_error,
    DataError: _data_error,
    OperationalError: _connection_error,
    InterfaceError: _connection_error,
    PoolTimeout: _pool_timeout,
}
