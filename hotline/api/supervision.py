"""REST: supervision and accountability."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from hotline import views
from hotline.api.deps import OVERSIGHT, IdQuery, SessionDep, UserDep, require
from hotline.auth import Actor
from hotline.errors import Forbidden
from hotline.models import (
    AccountabilityCase,
    Role,
    SupervisionOrder,
    Ticket,
    Unit,
)

router = APIRouter(prefix="/api")


def _scope_unit(actor: Actor, unit_id: int | None) -> int | None:
    """Oversight roles may filter by any unit; a unit handler always sees only its own."""
    if actor.role == Role.unit_handler:
        if unit_id is not None and unit_id != actor.unit_id:
            raise Forbidden("a unit sees only its own supervision orders, cases and scorecard")
        return actor.unit_id
    require(actor, *OVERSIGHT)
    return unit_id


class SupervisionOut(BaseModel):
    id: int
    ticket_id: int
    ticket_number: str
    unit_id: int
    unit_name: str | None
    state: str
    overdue: bool
    note: str
    issued_at: datetime
    due_at: datetime
    responded_at: datetime | None
    response: str | None


@router.get("/supervision", response_model=list[SupervisionOut], tags=["supervision"])
def list_supervision(
    session: SessionDep, actor: UserDep,
    state: Literal["open", "responded", "overdue", "all"] = "open",
    unit_id: IdQuery = None,
    ticket_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SupervisionOut]:
    """督办 orders; ``overdue`` = open and past their due date; ``ticket_id``: one ticket's. Oldest due first."""
    unit_id = _scope_unit(actor, unit_id)
    now = datetime.now(UTC)
    stmt = (
        select(SupervisionOrder, Ticket.number, Unit.name)
        .join(Ticket, Ticket.id == SupervisionOrder.ticket_id)
        .outerjoin(Unit, Unit.id == SupervisionOrder.unit_id)
        .order_by(SupervisionOrder.due_at, SupervisionOrder.id)
        .limit(limit)
    )
    if state in ("open", "responded"):
        stmt = stmt.where(SupervisionOrder.state == state)
    elif state == "overdue":
        stmt = stmt.where(SupervisionOrder.state == "open", SupervisionOrder.due_at < now)
    if unit_id is not None:
        stmt = stmt.where(SupervisionOrder.unit_id == unit_id)
    if ticket_id is not None:
        stmt = stmt.where(SupervisionOrder.ticket_id == ticket_id)
    return [
        SupervisionOut(
            id=o.id, ticket_id=o.ticket_id, ticket_number=number, unit_id=o.unit_id, unit_name=name, state=o.state,
            overdue=o.state == "open" and o.due_at < now, note=views.shown_text(o.note, actor), issued_at=o.issued_at,
            due_at=o.due_at,
            responded_at=o.responded_at, response=None if o.response is None else views.shown_text(o.response, actor),
        )
        for o, number, name in session.execute(stmt)
    ]


class CaseOut(BaseModel):
    id: int
    ticket_id: int
    ticket_number: str
    unit_id: int
    unit_name: str | None
    state: str
    rule: str
    reason: str
    opened_at: datetime
    explained_at: datetime | None
    explanation: str | None
    decided_at: datetime | None
    decision_note: str | None


@router.get("/accountability", response_model=list[CaseOut], tags=["supervision"])
def list_accountability(
    session: SessionDep, actor: UserDep,
    state: Literal["opened", "explained", "upheld", "dismissed", "open", "all"] = "open",
    unit_id: IdQuery = None,
    ticket_id: IdQuery = None,
    rule: Literal["manual", "overdue", "refused_returns", "closed_unsolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[CaseOut]:
    """问责 cases; ``open`` = opened or explained (waiting for the unit or for a decision); ``ticket_id``: one
    ticket's. Oldest first."""
    unit_id = _scope_unit(actor, unit_id)
    stmt = (
        select(AccountabilityCase, Ticket.number, Unit.name)
        .join(Ticket, Ticket.id == AccountabilityCase.ticket_id)
        .outerjoin(Unit, Unit.id == AccountabilityCase.unit_id)
        .order_by(AccountabilityCase.opened_at, AccountabilityCase.id)
        .limit(limit)
    )
    if state == "open":
        stmt = stmt.where(AccountabilityCase.state.in_(("opened", "explained")))
    elif state != "all":
        stmt = stmt.where(AccountabilityCase.state == state)
    if unit_id is not None:
        stmt = stmt.where(AccountabilityCase.unit_id == unit_id)
    if ticket_id is not None:
        stmt = stmt.where(AccountabilityCase.ticket_id == ticket_id)
    if rule is not None:
        stmt = stmt.where(AccountabilityCase.rule == rule)
    return [
        CaseOut(
            id=c.id, ticket_id=c.ticket_id, ticket_number=number, unit_id=c.unit_id, unit_name=name, state=c.state,
            rule=c.rule, reason=c.reason, opened_at=c.opened_at, explained_at=c.explained_at,
            explanation=c.explanation, decided_at=c.decided_at, decision_note=c.decision_note,
        )
        for c, number, name in session.execute(stmt)
    ]
