"""Desk REST: screen-pop."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from agent_ui.api.access import FRONT_DESK
from hotline import views
from hotline.api.deps import SessionDep, UserDep, require
from hotline.errors import Invalid
from hotline.models import (
    Citizen,
    Ticket,
)
from hotline.visibility import visible_tickets

router = APIRouter(prefix="/api/desk", tags=["desk"])
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")

class CitizenHistory(BaseModel):
    phone: str
    citizens: list[views.CitizenOut]
    tickets: list[views.TicketOut]


@router.get("/citizens", response_model=CitizenHistory)
def citizen_history(
    session: SessionDep,
    actor: UserDep,
    phone: Annotated[str, Query(min_length=5, max_length=32)],
) -> CitizenHistory:
    """Screen-pop for an incoming call: who is calling and what they asked before.

    Everyone the agent page admits (agents, dispatchers, supervisors) may look a caller up; the numbers in the
    answer follow ``hotline.views``: full for agents and supervisors, masked for dispatchers (the echo of the
    number asked for too, so a dispatcher's screen never shows a full number).
    """
    require(actor, *FRONT_DESK)
    normalized = phone.replace(" ", "").replace("-", "")
    if not _PHONE.match(normalized):
        raise Invalid("phone must be digits, e.g. 13800001234", field="phone")
    full = actor.role in views.FULL_PHONE_ROLES

    def shown(number: str | None) -> str | None:
        return number if full else views.mask_phone(number)

    citizens = session.scalars(select(Citizen).where(Citizen.phone == normalized).order_by(Citizen.id)).all()
    ids = [c.id for c in citizens]
    tickets = (
        session.scalars(
            visible_tickets(actor)
            .where(Ticket.citizen_id.in_(ids))
            .options(*views.ticket_load_options())
            .order_by(Ticket.received_at.desc(), Ticket.id.desc())
            .limit(20)
        ).all()
        if ids
        else []
    )
    return CitizenHistory(
        phone=shown(normalized) or normalized,
        citizens=[views.CitizenOut(id=c.id, name=c.name, phone=shown(c.phone)) for c in citizens],
        tickets=[views.ticket_out(t, actor) for t in tickets],
    )
