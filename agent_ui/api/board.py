"""Desk REST: supervisor board."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from agent_ui.api.access import SUPERVISORS
from agent_ui.api.queues import DeskTicket, _desk_tickets
from hotline.api.deps import ServicesDep, SessionDep, UserDep, require
from hotline.models import (
    CHANNEL_LABELS,
    Area,
    Category,
    Status,
    Ticket,
)
from hotline.states import DEADLINE_STATES, sorted_states
from hotline.visibility import visible_tickets

router = APIRouter(prefix="/api/desk", tags=["desk"])

class BoardOut(BaseModel):
    server_time: datetime
    watch: list[DeskTicket]  # open dispatched tickets by deadline; the page colours them
    extension_pending: list[DeskTicket]
    returned: list[DeskTicket]
    unsatisfied: list[DeskTicket]
    counts: dict[str, int]


@router.get("/board", response_model=BoardOut)
def board(session: SessionDep, services: ServicesDep, actor: UserDep) -> BoardOut:
    """Deadlines and approvals for supervisors: the nearest 500 deadlines, and everything awaiting a decision."""
    require(actor, *SUPERVISORS)
    now = datetime.now(UTC)
    base = visible_tickets(actor)
    watch = _desk_tickets(
        session, services, actor,
        base.where(Ticket.status.in_(sorted_states(DEADLINE_STATES)), Ticket.reply_due.is_not(None))
        .order_by(Ticket.reply_due.asc(), Ticket.id.asc()).limit(500),
        now,
    )
    # Only decidable requests: the core leaves ``extension_pending`` set when the unit replies meanwhile, and
    # ``decide_extension`` is allowed from dispatched/signed only.
    ext = _desk_tickets(session, services, actor, base.where(Ticket.extension_pending.is_(True),
                                                             Ticket.status.in_((Status.dispatched, Status.signed)))
                        .order_by(Ticket.reply_due.asc()).limit(200), now)
    returned = _desk_tickets(session, services, actor, base.where(Ticket.status == Status.returned)
                             .order_by(Ticket.updated_at.asc()).limit(200), now)
    unsatisfied = _desk_tickets(
        session, services, actor,
        base.where(Ticket.status == Status.callback, Ticket.satisfaction == "unsatisfied")
        .order_by(Ticket.updated_at.asc()).limit(200),
        now,
    )
    overdue = session.scalar(
        select(func.count()).select_from(
            base.where(Ticket.status.in_(sorted_states(DEADLINE_STATES)), Ticket.reply_due < now).subquery()
        )
    ) or 0
    open_count = session.scalar(
        select(func.count()).select_from(base.where(Ticket.status.in_(sorted_states(DEADLINE_STATES))).subquery())
    ) or 0
    return BoardOut(
        server_time=now, watch=watch, extension_pending=ext, returned=returned, unsatisfied=unsatisfied,
        counts={"overdue": overdue, "open": open_count},
    )


class SeriesOut(BaseModel):
    key: str
    id: int | None  # category_id / area_id for the drill-down; None when not filterable
    name: str
    counts: list[int]


class StatsOut(BaseModel):
    days: list[date]
    category: list[SeriesOut]
    area: list[SeriesOut]
    channel: list[SeriesOut]
    total: int


@router.get("/stats", response_model=StatsOut)
def stats(
    session: SessionDep,
    services: ServicesDep,
    actor: UserDep,
    days: Annotated[int, Query(ge=1, le=92)] = 14,
) -> StatsOut:
    """Volume per day (city time) by first-level category, area and channel; each series names its filter."""
    require(actor, *SUPERVISORS)
    zone = services.timing.zone
    today = datetime.now(UTC).astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), zone)
    day_list = [first + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(day_list)}
    categories = {c.id: c for c in session.scalars(select(Category))}
    top_by_code = {c.code: c for c in categories.values() if c.level == 1 or c.parent_id is None}
    areas = {a.id: a for a in session.scalars(select(Area))}
    # Supervisors and admins see every ticket (``require`` above), so no visibility filter is needed here.
    rows = session.execute(
        select(Ticket.received_at, Ticket.category_id, Ticket.area_id, Ticket.channel).where(
            Ticket.received_at >= since
        )
    ).all()
    series: dict[str, dict[str, SeriesOut]] = {"category": {}, "area": {}, "channel": {}}

    def bump(dim: str, key: str, id_: int | None, name: str, i: int) -> None:
        s = series[dim].get(key)
        if s is None:
            s = series[dim][key] = SeriesOut(key=key, id=id_, name=name, counts=[0] * days)
        s.counts[i] += 1

    for received_at, category_id, area_id, channel in rows:
        i = index.get(received_at.astimezone(zone).date())
        if i is None:
            continue
        cat = categories.get(category_id) if category_id is not None else None
        top = top_by_code.get(cat.code[:2]) if cat is not None else None
        if top is not None:
            bump("category", f"c{top.id}", top.id, top.name, i)
        else:
            bump("category", "none", None, "未分类", i)
        area = areas.get(area_id) if area_id is not None else None
        if area is not None:
            bump("area", f"a{area.id}", area.id, area.name, i)
        else:
            bump("area", "none", None, "未识别地区", i)
        bump("channel", channel, None, CHANNEL_LABELS.get(channel, channel), i)

    def ordered(dim: str) -> list[SeriesOut]:
        return sorted(series[dim].values(), key=lambda s: -sum(s.counts))

    return StatsOut(days=day_list, category=ordered("category"), area=ordered("area"),
                    channel=ordered("channel"), total=len(rows))
