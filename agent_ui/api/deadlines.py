"""Desk REST: deadlines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hotline.api.deps import ServicesDep, SessionDep, UserDep
from hotline.countdown import DeadlineInfo, deadline_info, open_flags, with_flags, working_periods
from hotline.errors import Invalid
from hotline.fields import MAX_ID, id_in_range
from hotline.models import (
    Ticket,
)
from hotline.visibility import visible_tickets

router = APIRouter(prefix="/api/desk", tags=["desk"])

class DeadlinesOut(BaseModel):
    server_time: datetime
    periods: list[tuple[datetime, datetime]]
    tickets: dict[int, DeadlineInfo]


@router.get("/deadlines", response_model=DeadlinesOut)
def deadlines(
    session: SessionDep,
    services: ServicesDep,
    actor: UserDep,
    ids: Annotated[str, Query(max_length=4000, description="comma-separated ticket ids")] = "",
) -> DeadlinesOut:
    """Remaining working time per visible ticket, and the office periods of the next days."""
    try:
        wanted = [id_in_range(x) for x in ids.split(",") if x.strip()][:500]
    except ValueError as exc:
        raise Invalid(f"ids 须为逗号分隔的工单编号，每个在 1 至 {MAX_ID} 之间 (ids: {exc})", field="ids") from exc
    now = datetime.now(UTC)
    tickets = session.scalars(visible_tickets(actor).where(Ticket.id.in_(wanted))).all() if wanted else []
    flags = open_flags(session, actor, [t.id for t in tickets])
    out = {t.id: with_flags(deadline_info(services.timing, t, now), flags.get(t.id)) for t in tickets}
    return DeadlinesOut(server_time=now, periods=working_periods(services.timing, now), tickets=out)
