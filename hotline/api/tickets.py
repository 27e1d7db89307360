"""REST: tickets."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, or_, select

from hotline import action_forms, intake, views, workflow
from hotline.api.deps import IdPath, IdQuery, ServicesDep, SessionDep, UserDep
from hotline.errors import Forbidden, Invalid, describe_validation
from hotline.fields import Day
from hotline.models import (
    Category,
    Status,
    Ticket,
)
from hotline.states import DEADLINE_STATES, sorted_states
from hotline.visibility import visible_tickets

router = APIRouter(prefix="/api")


class TicketPage(BaseModel):
    items: list[views.TicketOut]
    total: int
    page: int
    page_size: int




def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("/tickets", response_model=TicketPage, tags=["tickets"])
def list_tickets(
    session: SessionDep,
    services: ServicesDep,
    actor: UserDep,
    status: Annotated[list[Status] | None, Query(description="one or more states")] = None,
    unit_id: IdQuery = None,
    category_id: IdQuery = None,
    area_id: IdQuery = None,
    channel: str | None = None,
    overdue: bool | None = None,
    urgent: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="free text in number, title or text")] = None,
    received_from: Day | None = None,
    received_to: Day | None = None,
    citizen_id: IdQuery = None,
    sort: Literal["newest", "oldest", "deadline"] = "newest",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    if citizen_id is not None and actor.is_unit:
        # A confidential (保密) ticket hides its citizen from units; a lookup by citizen would name them anyway.
        raise Forbidden("承办单位不能按市民查询工单 (units cannot filter tickets by citizen)", field="citizen_id")
    stmt = visible_tickets(actor)
    if status:
        stmt = stmt.where(Ticket.status.in_([s.value for s in status]))
    if unit_id is not None:
        stmt = stmt.where(Ticket.lead_unit_id == unit_id)
    if category_id is not None:
        codes = select(Category.code).where(Category.id == category_id).scalar_subquery()
        sub = select(Category.id).where(Category.code.startswith(codes))
        stmt = stmt.where(Ticket.category_id.in_(sub))
    if area_id is not None:
        stmt = stmt.where(Ticket.area_id == area_id)
    if channel:
        stmt = stmt.where(Ticket.channel == channel)
    if urgent is not None:
        stmt = stmt.where(Ticket.urgent == urgent)
    if citizen_id is not None:
        stmt = stmt.where(Ticket.citizen_id == citizen_id)
    now = datetime.now(UTC)
    if overdue is True:
        stmt = stmt.where(Ticket.status.in_(sorted_states(DEADLINE_STATES)), Ticket.reply_due < now)
    elif overdue is False:
        stmt = stmt.where(or_(Ticket.reply_due.is_(None), Ticket.reply_due >= now))
    if q:
        pattern = f"%{_escape_like(q.strip())}%"
        stmt = stmt.where(
            or_(Ticket.number.like(pattern, escape="\\"), Ticket.title.like(pattern, escape="\\"),
                Ticket.text.like(pattern, escape="\\"))
        )
    zone = services.timing.zone
    if received_from is not None:
        stmt = stmt.where(Ticket.received_at >= datetime.combine(received_from, time.min, zone))
    if received_to is not None:
        stmt = stmt.where(Ticket.received_at < datetime.combine(received_to + timedelta(days=1), time.min, zone))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    order: Any = {
        "newest": (Ticket.received_at.desc(), Ticket.id.desc()),
        "oldest": (Ticket.received_at.asc(), Ticket.id.asc()),
        "deadline": (Ticket.reply_due.is_(None), Ticket.reply_due.asc(), Ticket.id.asc()),
    }[sort]
    rows = session.scalars(
        stmt.options(*views.ticket_load_options()).order_by(*order).offset((page - 1) * page_size).limit(page_size)
    ).all()
    reworks = views.reworks(session, [t.id for t in rows])
    return TicketPage(items=[views.ticket_out(t, actor, reworks.get(t.id)) for t in rows], total=total, page=page,
                      page_size=page_size)


@router.get("/tickets/{ticket_id}", response_model=views.TicketDetail, tags=["tickets"])
def get_ticket(ticket_id: IdPath, session: SessionDep, actor: UserDep) -> views.TicketDetail:
    return views.ticket_detail(session, ticket_id, actor)


@router.post("/tickets/{ticket_id}/actions/{action}", response_model=views.TicketDetail, tags=["tickets"])
def act_on_ticket(ticket_id: IdPath,
    action: str,
    session: SessionDep,
    services: ServicesDep,
    actor: UserDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> views.TicketDetail:
    """Every workflow action: dispatch, sign, return, reply, callback, … (see ``GET /api/actions``)."""
    try:
        data = workflow.parse_input(action, body or {})
    except ValidationError as exc:
        detail, english, errors = describe_validation(exc.errors())
        raise Invalid(english, zh=detail, errors=errors) from exc
    settings = services.settings
    follow_ups = intake.follow_up_maker(suggester=services.suggester, timing=services.timing,
                                        max_text_chars=settings.max_text_chars, auto_dispatch=settings.auto_dispatch)
    workflow.perform(session, ticket_id, action, actor, data, services.timing, make_follow_up=follow_ups)
    session.commit()
    return views.ticket_detail(session, ticket_id, actor)


@router.get("/actions", response_model=list[action_forms.ActionOut], tags=["tickets"])
def list_actions() -> list[action_forms.ActionOut]:
    """The transition table, as data: which action leads from which states to which, for whom, with which form."""
    return action_forms.describe_actions()
