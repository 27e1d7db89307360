"""REST: the admin audit trail (admin): every configuration change, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from hotline.api.deps import SessionDep, UserDep, require
from hotline.models import AuditEvent, Role

router = APIRouter(prefix="/api")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    entity: str
    entity_id: str
    summary: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.get("/audit", response_model=list[AuditOut], tags=["admin"])
def list_audit(
    session: SessionDep, actor: UserDep,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditOut]:
    """The newest events (of one entity, or one row of it); ``before_id`` pages further back."""
    require(actor, Role.admin)
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if entity:
        stmt = stmt.where(AuditEvent.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    return [AuditOut.model_validate(e, from_attributes=True) for e in session.scalars(stmt)]
