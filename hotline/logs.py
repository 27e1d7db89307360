"""Logging for the service: one JSON object per line, the request id on every line, no secrets, no full phones.

- ``configure`` sets up the root logger for an entry point; ``uvicorn_config`` is the same as a ``dictConfig``
  for uvicorn, which applies it in each of its worker processes. ``HOTLINE_LOG_FORMAT``: ``json`` (default, what a
  log collector reads) or ``text`` (one readable line, what ``make run`` uses in a terminal); ``HOTLINE_LOG_LEVEL``
  (default ``INFO``).
- ``RequestId`` (ASGI middleware) takes a sane incoming ``X-Request-ID`` (1–128 of ``A-Z a-z 0-9 . _ : -``) or
  makes one, keeps it in a context variable for everything logged while the request runs (threads started by
  ``asyncio.to_thread`` and FastAPI's thread pool copy the context) and answers it in ``X-Request-ID``. It also
  writes the access line (method, route template, status, milliseconds), so uvicorn's own access log is off.
- ``Redact`` (a filter on the handler, so it sees every logger's records, ours and the libraries') masks mainland
  mobile numbers (``13912345678`` → ``139****5678``), replaces bearer tokens, JWTs and the values of
  ``Authorization``/``token``/``password``/``secret``/``key``/``signature`` fields with ``[redacted]``, and drops
  such fields passed as ``extra``. It runs on the formatted message and the traceback text alike.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import re
import time
import uuid
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.settings import ENV_FILES

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MASK = "[redacted]"

_MOBILE = re.compile(r"(?<![\d+])((?:\+?86)?1[3-9]\d)\d{4}(\d{4})(?!\d)")
_JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+")
_SECRET_NAMES = r"authorization|access_token|api_?key|token|password|passwd|secret|signature|auth_token|key"
_SECRET_FIELD = re.compile(
    rf"(?i)(?P<name>[\w-]*(?:{_SECRET_NAMES}))(?P<sep>[\"']?\s*[:=]\s*[\"']?)(?P<value>(?!(?:bearer|basic)\s)(?!\[redacted\])[^\s\"'&,;}}\]]+)"
)
_SECRET_ATTR = re.compile(rf"(?i)({_SECRET_NAMES})")
#: what every one of the patterns above needs somewhere in the text (a JWT's eyJ, bearer/basic, a secret's name —
#: each of _SECRET_NAMES contains one of these words —, a mobile's 11 digits): most lines (every access line) have
#: none of it, and one search is 4x cheaper than the four substitutions
_MAYBE_SECRET = re.compile(r"(?i)eyj|bearer|basic|authorization|token|passw|secret|signature|key|\d{11}")


def redact(text: str) -> str:
    """The text with secrets replaced and mobile numbers masked (also used for query strings in access lines)."""
    if not _MAYBE_SECRET.search(text):
        return text
    text = _JWT.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _SECRET_FIELD.sub(lambda m: f"{m.group('name')}{m.group('sep')}{MASK}", text)
    return _MOBILE.sub(r"\1****\2", text)


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # formatters would format exc_info afresh, unmasked; the masked text is what they print instead
            record.exc_text, record.exc_info = redact(record.exc_text), None
        for name in [k for k in record.__dict__ if k not in _STANDARD_ATTRS]:
            value = record.__dict__[name]
            if _SECRET_ATTR.search(name):
                del record.__dict__[name]
            elif isinstance(value, str):
                record.__dict__[name] = redact(value)
        return True


class WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=ENV_FILES, extra="ignore")

    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


LogFormat = Literal["json", "text"]
_TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def logging_config(log_format: LogFormat | None = None, level: str | None = None) -> dict[str, Any]:
    """The ``dictConfig`` of every entry point: one stderr handler on the root; uvicorn's loggers propagate to it."""
    settings = LogSettings()
    log_format = log_format or settings.log_format
    formatter: dict[str, Any] = (
        {"()": "pythonjsonlogger.json.JsonFormatter",
         "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
         "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
         "json_ensure_ascii": False}
        if log_format == "json" else {"format": _TEXT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": WithRequestId}, "redact": {"()": Redact}},
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "default", "filters": ["request_id", "redact"]}},
        "root": {"handlers": ["stderr"], "level": level or settings.log_level},
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure(log_format: LogFormat | None = None, level: str | None = None) -> None:
    logging.config.dictConfig(logging_config(log_format, level))


access_log = logging.getLogger("hotline.access")


def route_of(scope: Scope) -> str:
    """The matched route's template (``/api/tickets/{ticket_id}``), never the raw path: bounded label values."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str):
        return path
    root = scope.get("root_path") or ""
    if root and root != scope.get("app_root_path", ""):  # a mounted app (static files, a sub-application)
        return f"{root}/*"
    return "<unmatched>"


class RequestId:
    """Give every HTTP request and WebSocket an id, log the access line (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                         if k == b"x-request-id"), "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                query = scope.get("query_string", b"").decode("latin-1")
                access_log.info(
                    "%s %s%s %d %.1f ms", scope["method"], scope["path"], f"?{query}" if query else "", status,
                    (time.perf_counter() - started) * 1000,
                    extra={"method": scope["method"], "route": route_of(scope), "status": status,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
                )
            REQUEST_ID.reset(token)
