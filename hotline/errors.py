"""Domain errors carry their HTTP status, so business code never imports FastAPI.

Two texts per error (issue 13: English leaked into the desk): ``message`` is the English for logs, clients and
tests (the API's machine field, ``message`` in the JSON body); ``people`` is what a person is shown (``detail``),
always Chinese. A raise may give its Chinese as ``zh=``; a message that is Chinese already is its own; otherwise
the class's Chinese default says what kind of refusal it was. Validation errors (pydantic's, from a request body
or an action payload) are worded here too, field by field (``describe_validation``), so the app's exception handlers
and the action endpoint say the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

_CJK = re.compile(r"[\u4e00-\u9fff]")


class DomainError(Exception):
    status_code = 400
    people_default = "请求无法处理，请检查后重试"

    def __init__(self, message: str, *, zh: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh
        self.detail = detail

    @property
    def people(self) -> str:
        if self.zh:
            return self.zh
        if _CJK.search(self.message):
            return self.message
        return self.people_default


class NotFound(DomainError):
    status_code = 404
    people_default = "找不到要查看的内容（不存在，或不在您的权限范围内）"


class Forbidden(DomainError):
    status_code = 403
    people_default = "您的角色无权进行此操作"


class Conflict(DomainError):
    status_code = 409
    people_default = "操作冲突：工单的状态已经变化，请刷新后重试"


class Invalid(DomainError):
    status_code = 422
    people_default = "填写的内容不符合要求，请检查后重试"


class Unauthorized(DomainError):
    status_code = 401
    people_default = "请重新登录"


#: payload fields as the desk's forms name them
FIELD_LABELS: Mapping[str, str] = {
    "note": "说明", "unit_id": "主办单位", "co_unit_ids": "协办单位", "category_id": "分类", "line": "转接线路",
    "parent_id": "并入工单", "working_hours": "延长工作小时", "approve": "审批结果", "satisfaction": "满意度",
    "solved": "是否解决", "due_at": "限办时间", "decision": "处理", "case_id": "问责事项", "order_id": "督办件",
    "attachments": "附件", "version": "版本", "text": "诉求内容", "title": "标题", "location": "地点",
    "channel": "渠道", "phone": "电话", "name": "姓名", "citizen": "市民", "kind": "诉求类型",
    "username": "用户名", "password": "密码",
}


def _field_label(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if p != "body" and not isinstance(p, int)]
    if not parts:
        return "请求内容"
    return FIELD_LABELS.get(parts[-1], parts[-1])


def _people_error(error: Mapping[str, Any]) -> str:
    """One pydantic error in Chinese: the field's label and what is wrong with it."""
    label = _field_label(error.get("loc", ()))
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"请填写{label}"
    if kind == "string_too_short":
        return f"{label}至少需要 {ctx.get('min_length', '')} 个字" if ctx.get("min_length", 1) > 1 else f"请填写{label}"
    if kind == "string_too_long":
        return f"{label}最多 {ctx.get('max_length', '')} 个字"
    if kind in ("greater_than", "greater_than_equal"):
        return f"{label}须{'大于' if kind == 'greater_than' else '不小于'} {ctx.get('gt', ctx.get('ge', ''))}"
    if kind in ("less_than", "less_than_equal"):
        return f"{label}须{'小于' if kind == 'less_than' else '不大于'} {ctx.get('lt', ctx.get('le', ''))}"
    if kind == "too_long":
        return f"{label}最多 {ctx.get('max_length', '')} 项"
    if kind in ("literal_error", "enum"):
        return f"{label}不是可选的值"
    if kind == "extra_forbidden":
        return f"不认识的字段：{label}"
    if kind.startswith(("int_", "float_", "bool_", "datetime_", "date_", "string_type", "list_type")):
        return f"{label}的格式不对"
    return f"{label}填写有误"


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


def describe_validation(errors: Iterable[Mapping[str, Any]]) -> tuple[str, str, list[dict[str, str]]]:
    """pydantic's errors as (``detail`` for people: Chinese, naming the field as the desk's form does; ``message``:
    the English summary; ``errors``: per field the Chinese ``message``, the machine ``type`` and pydantic's English
    ``reason``). Our own bounded types (``hotline.fields``) already speak Chinese and are kept word for word."""
    items = list(errors)
    described: list[dict[str, str]] = []
    people: list[str] = []
    for error in items:
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
        people.append(reason if _CJK.search(reason) else _people_error(error))
    english = "; ".join(f"{e['field']}: {e['reason']}" for e in described) or "invalid request"
    return "；".join(dict.fromkeys(people)) or Invalid.people_default, english, described


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
    message: str | None = None  # the English, for logs and programs
    errors: list[FieldErrorOut] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "请求有误：detail 说明原因，errors 逐项列出 (validation error)"},
    "4XX": {"model": ErrorOut, "description": "拒绝：未登录、无权限、不存在、冲突、过大或过于频繁 (refused)"},
}
