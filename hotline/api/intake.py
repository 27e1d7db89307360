"""REST: intake."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from hotline import intake, views
from hotline.api.deps import ActorDep, ServicesDep, SessionDep, require
from hotline.models import (
    Role,
    Ticket,
)

router = APIRouter(prefix="/api")


@router.post("/intake", response_model=views.TicketOut, status_code=201, tags=["intake"])
def submit_intake(
    body: intake.IntakeRequest, response: Response, session: SessionDep, services: ServicesDep, actor: ActorDep
) -> views.TicketOut:
    """The one intake point over HTTP. A repeated (channel, external_id) answers 200 with the same ticket."""
    if actor.user_id is not None:
        require(actor, Role.agent, Role.dispatcher, Role.supervisor)
    ticket, created = intake.submit(
        session,
        body,
        actor,
        suggester=services.suggester,
        timing=services.timing,
        max_text_chars=services.settings.max_text_chars,
        auto_dispatch=services.settings.auto_dispatch,
        numbers=services.numbers,
    )
    session.commit()
    if not created:
        response.status_code = 200
    load = _ANSWER_LOAD if ticket.parent_id is None else (*_ANSWER_LOAD, *_PARENT_LOAD)
    loaded = session.scalars(select(Ticket).where(Ticket.id == ticket.id).options(*load)).unique().one()
    return views.ticket_out(loaded, actor)


#: what the answer shows of the new ticket, read in one statement (``views.ticket_load_options`` would take one per
#: relation: five more round trips on every synchronous intake)
_ANSWER_LOAD = (
    joinedload(Ticket.category),
    joinedload(Ticket.area),
    joinedload(Ticket.lead_unit),
    joinedload(Ticket.citizen),
    joinedload(Ticket.co_units),
)
#: a new ticket has no parent (the join of the tickets table with itself would double the row for nothing)
_PARENT_LOAD = (joinedload(Ticket.parent).selectinload(Ticket.co_units),)
