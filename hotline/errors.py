"""Domain errors carry their HTTP status, so business code never imports FastAPI.

Two texts per error (issue 13: English leaked into the desk): ``message`` is the English for logs, clients and
tests (the API's machine field, ``message`` in the JSON body); ``people`` is what a person is shown (``detail``),
always Chinese. A raise may give its Chinese as ``zh=``; a message that is Chinese already is its own; otherwise
the class's Chinese default says what kind of refusal it was. Validation errors (pydantic's, from a request body
or an action payload) are worded here too, field by field (``validation_texts``), so the app's exception handlers
and the action endpoint say the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

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


def validation_texts(errors: Iterable[Mapping[str, Any]]) -> tuple[str, str, list[dict[str, str]]]:
    """(Chinese for people, English summary, per-field list) of pydantic errors."""
    items = list(errors)
    fields = [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
         "message": str(e.get("msg", "")), "people": _people_error(e)}
        for e in items
    ]
    english = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    people = "；".join(dict.fromkeys(f["people"] for f in fields)) or Invalid.people_default
    return people, english, fields
