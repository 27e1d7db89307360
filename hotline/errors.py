"""Domain errors carry their HTTP status, so business code never imports FastAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(DomainError):
    status_code = 404


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


class Invalid(DomainError):
    status_code = 422


class Unauthorized(DomainError):
    status_code = 401


class TooMany(DomainError):
    """Rate limited: ``retry_after`` seconds until the next attempt is accepted (sent as ``Retry-After``)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int, **detail: Any) -> None:
        super().__init__(message, retry_after=retry_after, **detail)
        self.retry_after = retry_after


# Chinese for the validation errors a desk user can cause, by pydantic's error type; {placeholders} come from the
# error's context. Types not listed keep pydantic's English message; our own types (hotline.fields) are Chinese.
_ZH: dict[str, str] = {
    "missing": "必须填写",
    "extra_forbidden": "不认识的字段",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "int_from_float": "须为整数",
    "float_parsing": "须为数字",
    "float_type": "须为数字",
    "bool_parsing": "须为 true 或 false",
    "bool_type": "须为 true 或 false",
    "string_type": "须为文字",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_pattern_mismatch": "格式不正确",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "须不小于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "须不大于 {le}",
    "date_parsing": "不是有效的日期，例如 2026-11-22",
    "date_from_datetime_parsing": "不是有效的日期，例如 2026-11-22",
    "date_type": "不是有效的日期，例如 2026-11-22",
    "datetime_parsing": "不是有效的时间，例如 2026-11-22T09:30:00+08:00",
    "datetime_from_date_parsing": "不是有效的时间，例如 2026-11-22T09:30:00+08:00",
    "datetime_type": "不是有效的时间，例如 2026-11-22T09:30:00+08:00",
    "literal_error": "须为以下之一：{expected}",
    "enum": "须为以下之一：{expected}",
    "json_invalid": "不是有效的 JSON",
    "json_type": "不是有效的 JSON",
    "model_type": "须为 JSON 对象",
    "model_attributes_type": "须为 JSON 对象",
    "dict_type": "须为 JSON 对象",
    "list_type": "须为列表",
    "string_unicode": "须为 UTF-8 文字",
}


def describe_validation(errors: list[Any]) -> tuple[str, list[dict[str, str]]]:
    """pydantic's errors as ``detail`` (Chinese, one line) and ``errors``: per field the Chinese ``message``, the
    machine ``type`` and pydantic's English ``reason``."""
    described: list[dict[str, str]] = []
    for error in errors:
        field = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")) or "body"
        kind = str(error.get("type", ""))
        reason = str(error.get("msg", ""))
        template = _ZH.get(kind)
        message = reason
        if template is not None:
            try:
                message = template.format(**(error.get("ctx") or {}))
            except (KeyError, IndexError, ValueError):
                message = template.split("{")[0].rstrip("：: ") or reason
        described.append({"field": field, "message": message, "type": kind, "reason": reason})
    detail = "；".join(f"{e['field']}：{e['message']}" for e in described) or "请求无效 (invalid request)"
    return detail, described


class FieldErrorOut(BaseModel):
    """One thing wrong with a request: the field (or sheet and row of an import), what to do, and the machine
    ``type`` with pydantic's English ``reason`` for validation errors."""

    model_config = ConfigDict(extra="allow")
    field: str | None = None
    message: str
    type: str | None = None
    reason: str | None = None


class ErrorOut(BaseModel):
    """Every refusal the API answers (4xx, 503): ``detail`` a person can act on, in Chinese with the English after
    it where the two differ; ``errors`` per field for a 422; other keys (``field``, ``limit``, ``retry_after`` …)
    as the refusal needs them."""

    model_config = ConfigDict(extra="allow")
    detail: str
    errors: list[FieldErrorOut] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "请求有误：detail 说明原因，errors 逐项列出 (validation error)"},
    "4XX": {"model": ErrorOut, "description": "拒绝：未登录、无权限、不存在、冲突、过大或过于频繁 (refused)"},
}
