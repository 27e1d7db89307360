"""Desk REST: queues."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import and_, exists, or_

from agent_ui.api.access import FRONT_DESK, SUPERVISORS
from hotline import views
from hotline.api.deps import ServicesDep, SessionDep, UserDep, require
from hotline.countdown import DeadlineInfo, deadline_info, open_flags, with_flags, working_periods
from hotline.models import (
    Role,
    Status,
    Ticket,
    TicketEvent,
)
from hotline.states import CALLBACK_STATES, TRIAGE_STATES, UNIT_VIEWS, sorted_states
from hotline.visibility import visible_tickets

router = APIRouter(prefix="/api/desk", tags=["desk"])

class DeskTicket(views.TicketOut):
    deadline: DeadlineInfo | None = None


def _desk_tickets(session: Any, services: Any, actor: Any, stmt: Any, now: datetime) -> list[DeskTicket]:
    rows = session.scalars(stmt.options(*views.ticket_load_options())).all()
    flags = open_flags(session, actor, [t.id for t in rows])
    reworks = views.reworks(session, [t.id for t in rows])
    return [
        DeskTicket(**views.ticket_out(t, actor, reworks.get(t.id)).model_dump(),
                   deadline=with_flags(deadline_info(services.timing, t, now), flags.get(t.id)))
        for t in rows
    ]


class QueueOut(BaseModel):
    server_time: datetime
    periods: list[tuple[datetime, datetime]]
    items: list[DeskTicket]


@router.get("/triage", response_model=QueueOut)
def triage_queue(session: SessionDep, services: ServicesDep, actor: UserDep) -> QueueOut:
    """The front desk's live queue: received, returned and reopened tickets; urgent first, then reopened (重办: a
    citizen already waited one whole round), then oldest."""
    require(actor, *FRONT_DESK)
    now = datetime.now(UTC)
    stmt = (
        visible_tickets(actor)
        .where(Ticket.status.in_(sorted_states(TRIAGE_STATES)))
        .order_by(Ticket.urgent.desc(), (Ticket.status == Status.reopened).desc(), Ticket.received_at.asc(),
                  Ticket.id.asc())
        .limit(200)
    )
    return QueueOut(server_time=now, periods=[], items=_desk_tickets(session, services, actor, stmt, now))





@router.get("/unit-queue", response_model=QueueOut)
def unit_queue(
    session: SessionDep,
    services: ServicesDep,
    actor: UserDep,
    view: Annotated[str, Query(pattern="^(open|replied)$")] = "open",
) -> QueueOut:
    """A unit's tickets by deadline (nearest first) with countdown data; ``replied`` = waiting for callback."""
    require(actor, Role.unit_handler, *SUPERVISORS)
    now = datetime.now(UTC)
    states = sorted_states(UNIT_VIEWS[view])
    stmt = (
        visible_tickets(actor)
        .where(Ticket.status.in_(states))
        .order_by(Ticket.reply_due.is_(None), Ticket.reply_due.asc(), Ticket.id.asc())
        .limit(300)
    )
    return QueueOut(
        server_time=now, periods=working_periods(services.timing, now),
        items=_desk_tickets(session, services, actor, stmt, now),
    )


#: the phone channel's event for a call nobody took (channels.phone.handler): its ticket waits for a call back
MISSED_CALL_EVENT = "missed_call"


@router.get("/callbacks", response_model=QueueOut)
def callback_queue(session: SessionDep, services: ServicesDep, actor: UserDep) -> QueueOut:
    """回访: replied or directly answered tickets waiting for the callback, the longest-waiting first; then missed
    calls to call back (a ticket still received with a ``missed_call`` event)."""
    require(actor, *FRONT_DESK)
    now = datetime.now(UTC)
    missed = and_(Ticket.status == Status.received,
                  exists().where(TicketEvent.ticket_id == Ticket.id, TicketEvent.type == MISSED_CALL_EVENT))
    stmt = (
        visible_tickets(actor)
        .where(or_(Ticket.status.in_(sorted_states(CALLBACK_STATES)), missed))
        .order_by(Ticket.replied_at.is_(None), Ticket.replied_at.asc(), Ticket.id.asc())
        .limit(200)
    )
    return QueueOut(server_time=now, periods=[], items=_desk_tickets(session, services, actor, stmt, now))
