"""REST: deadline policies."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import audit
from hotline.api.deps import ADMIN, DESK, IdPath, IdQuery, Note, ServicesDep, SessionDep, UserDep, require
from hotline.errors import Invalid, NotFound
from hotline.fields import Id, Moment
from hotline.models import (
    KIND_LABELS,
    Category,
    DeadlinePolicyRow,
    Kind,
)
from hotline.services import Services, timing_changed
from hotline.timing import row_policy
from routing.deadlines import KINDS, DeadlinePolicy, compute_deadlines

router = APIRouter(prefix="/api")


class PolicyIn(BaseModel):
    """``scope``: kind (non-urgent default of ``kind``), urgent (any kind, or ``kind`` only) or category (non-urgent
    tickets of ``category_id``'s subtree, any kind). Durations are working time unless ``clock_time``."""

    model_config = ConfigDict(extra="forbid")
    scope: Literal["kind", "urgent", "category"]
    kind: Kind | None = None
    category_id: Id | None = None
    sign_minutes: int = Field(default=0, ge=0, le=60 * 24 * 60)
    sign_days: int = Field(default=0, ge=0, le=366)
    reply_minutes: int = Field(default=0, ge=0, le=60 * 24 * 60)
    reply_days: int = Field(default=0, ge=0, le=366)
    clock_time: bool = False
    note: Note = ""

    @model_validator(mode="after")
    def _scope_fields(self) -> PolicyIn:
        if self.scope == "kind" and (self.kind is None or self.category_id is not None):
            raise ValueError("scope 'kind' needs kind and no category_id")
        if self.scope == "category" and (self.category_id is None or self.kind is not None):
            raise ValueError("scope 'category' needs category_id and no kind (it applies to every kind)")
        if self.scope == "urgent" and self.category_id is not None:
            raise ValueError("scope 'urgent' takes no category_id (urgent tickets never follow category rules)")
        if self.reply_minutes == 0 and self.reply_days == 0:
            raise ValueError("a reply deadline of zero would make every ticket overdue at dispatch")
        return self

    def scope_key(self) -> str:
        if self.scope == "category":
            return f"category:{self.category_id}"
        return f"{self.scope}:{self.kind or '*'}"


class PolicyOut(BaseModel):
    id: int | None
    scope_key: str
    kind: str | None
    urgent: bool
    category_id: int | None
    sign_minutes: int
    sign_days: int
    reply_minutes: int
    reply_days: int
    clock_time: bool
    note: str


class PoliciesOut(BaseModel):
    rows: list[PolicyOut]
    effective: dict[str, dict[str, Any]]


def _policy_dict(p: DeadlinePolicy) -> dict[str, Any]:
    return {"sign_minutes": int(p.sign.total_seconds() // 60), "sign_days": p.sign_days,
            "reply_minutes": int(p.reply.total_seconds() // 60), "reply_days": p.reply_days,
            "clock_time": p.clock_time}


def _policies_out(session: Session, services: Services) -> PoliciesOut:
    rows = [PolicyOut.model_validate(r, from_attributes=True)
            for r in session.scalars(select(DeadlinePolicyRow).order_by(DeadlinePolicyRow.scope_key))]
    timing = services.timing
    effective: dict[str, dict[str, Any]] = {
        f"kind:{k}": {"label": KIND_LABELS[k], **_policy_dict(timing.policies.defaults[k])} for k in KINDS
    }
    effective["urgent:*"] = {"label": "紧急", **_policy_dict(timing.policies.urgent)}
    for k, p in timing.urgent_by_kind.items():
        effective[f"urgent:{k}"] = {"label": f"紧急{KIND_LABELS[k]}", **_policy_dict(p)}
    for code, p in timing.policies.overrides_by_category.items():
        effective[f"category_code:{code}"] = {"label": f"分类{code}", **_policy_dict(p)}
    return PoliciesOut(rows=rows, effective=effective)


@router.get("/deadline-policies", response_model=PoliciesOut, tags=["calendar"])
def list_policies(session: SessionDep, services: ServicesDep, actor: UserDep) -> PoliciesOut:
    """Admin rows and the effective table (built-in defaults with the rows applied)."""
    return _policies_out(session, services)


@router.put("/deadline-policies", response_model=PoliciesOut, tags=["calendar"])
def put_policy(body: PolicyIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> PoliciesOut:
    """Create or replace the policy of one scope; it applies to tickets dispatched from now on."""
    require(actor, *ADMIN)
    if body.category_id is not None and session.get(Category, body.category_id) is None:
        raise Invalid(f"unknown category {body.category_id}", field="category_id")
    key = body.scope_key()
    row = session.scalar(select(DeadlinePolicyRow).where(DeadlinePolicyRow.scope_key == key))
    before = audit.row_dict(row) if row is not None else None
    if row is None:
        row = DeadlinePolicyRow(scope_key=key)
        session.add(row)
    row.kind, row.urgent, row.category_id = body.kind, body.scope == "urgent", body.category_id
    row.sign_minutes, row.sign_days = body.sign_minutes, body.sign_days
    row.reply_minutes, row.reply_days = body.reply_minutes, body.reply_days
    row.clock_time, row.note = body.clock_time, body.note
    row_policy(row)  # validates
    session.flush()
    audit.record(session, actor, "update" if before else "create", "deadline_policy", row.id, before=before,
                 after=audit.row_dict(row), summary=f"设置时限 {key}")
    session.commit()
    timing_changed(services, session)
    return _policies_out(session, services)


@router.delete("/deadline-policies/{policy_id}", response_model=PoliciesOut, tags=["calendar"])
def delete_policy(policy_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep) -> PoliciesOut:
    """Back to the built-in default for that scope."""
    require(actor, *ADMIN)
    row = session.get(DeadlinePolicyRow, policy_id)
    if row is None:
        raise NotFound(f"deadline policy {policy_id} not found")
    audit.record(session, actor, "delete", "deadline_policy", row.id, before=audit.row_dict(row),
                 summary=f"删除时限 {row.scope_key}（恢复默认）")
    session.delete(row)
    session.commit()
    timing_changed(services, session)
    return _policies_out(session, services)


class PreviewOut(BaseModel):
    source: str
    category: str | None
    policy: dict[str, Any]
    start: datetime
    sign_due: datetime
    reply_due: datetime
    warnings: list[str]


@router.get("/deadline-policies/preview", response_model=PreviewOut, tags=["calendar"])
def preview_deadlines(
    session: SessionDep, services: ServicesDep, actor: UserDep,
    kind: Kind = Kind.help,
    urgent: bool = False, category_id: IdQuery = None, start: Moment | None = None,
) -> PreviewOut:
    """The deadlines a ticket dispatched at ``start`` would get, and which policy gives them (dispatchers,
    supervisors and admins: the ones who set or review deadlines)."""
    require(actor, *DESK)  # the front desk tells callers when to expect an answer; units get 403
    code = session.scalar(select(Category.code).where(Category.id == category_id)) if category_id else None
    if category_id is not None and code is None:
        raise Invalid(f"unknown category {category_id}", field="category_id")
    timing = services.timing
    choice = timing.choose(kind, urgent, code)
    moment = start or datetime.now(UTC)
    try:
        result = compute_deadlines(timing.calendar, choice.policy, moment)
    except (OverflowError, ValueError) as exc:
        raise Invalid(f"cannot compute deadlines from {moment.isoformat()}: {exc}", field="start") from exc
    years = {moment.astimezone(timing.zone).year, result.reply_due.year}
    warnings = [w for y in sorted(years) for w in timing.calendar.schedule_warnings(date(y, 1, 1), 0)]
    return PreviewOut(source=choice.source, category=choice.category, policy=_policy_dict(choice.policy),
                      start=moment, sign_due=result.sign_due, reply_due=result.reply_due, warnings=warnings)
