"""REST endpoints the desk needs beyond the core API, under ``/api/desk``.

They reuse the core's dependencies (session, services, authenticated user) and ``visible_tickets`` so the rules
are the REST API's own: a unit handler only ever reads its unit's tickets (lead or co-unit).

Deadline decision: the server knows the working calendar, the browser does not. So the server computes, per
ticket, the remaining *working* seconds at ``server_time`` plus the working periods of the next two weeks; the
page ticks a countdown down only while ``now`` lies inside one of those periods (clock time for urgent tickets,
which run 7×24). Colours are re-evaluated in the browser from two moments the server gives: ``reply_due`` (red
after it) and ``yellow_at`` (the moment 75 % of the allowed time is used, i.e. ≤ 25 % left), so a ticket turns
red on an open board without any message from the server.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import func, select

from hotline import views
from hotline.api import OVERDUE_STATES, ServicesDep, SessionDep, UserDep, require, visible_tickets
from hotline.errors import Invalid
from hotline.models import Area, Category, Citizen, Role, Status, Ticket, TicketEvent
from hotline.timing import Timing
from routing.deadlines import deadline_light, remaining_fraction, reminder_moment

router = APIRouter(prefix="/api/desk", tags=["desk"])

SUPERVISORS = (Role.supervisor, Role.admin)
FRONT_DESK = (Role.agent, Role.dispatcher, Role.supervisor)
TRIAGE_STATES = (Status.received, Status.returned, Status.reopened)
CALLBACK_STATES = (Status.replied, Status.answered)
CHANNEL_LABELS = {
    "phone": "电话", "wechat": "微信", "forum": "网络论坛", "web": "网站", "open311": "Open311",
    "walk_in": "来访", "email": "邮件",
}
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")


# --- deadlines ----------------------------------------------------------------------------------------------------


class DeadlineInfo(BaseModel):
    ticket_id: int
    status: str
    clock: bool  # True: urgent, counts clock time 7×24; False: working time
    paused: bool  # 待补充: the clock stands still
    sign_due: datetime | None
    reply_due: datetime | None
    sign_left_s: float | None  # remaining (working) seconds at server_time; negative = overdue
    reply_left_s: float | None
    yellow_at: datetime | None  # from this moment on ≤ 25 % of the time is left
    fraction: float | None
    light: str | None  # green / yellow / red, at server_time
    supervision_open: bool = False  # a 督办 order waits for the unit's answer
    accountability_open: bool = False  # a 问责 case waits for the unit's explanation


def _left(timing: Timing, clock: bool, now: datetime, due: datetime) -> float:
    if clock:
        return (due - now).total_seconds()
    return timing.calendar.working_time_between(now, due).total_seconds()


def deadline_info(timing: Timing, ticket: Ticket, now: datetime) -> DeadlineInfo:
    clock = bool(ticket.urgent)
    info = DeadlineInfo(
        ticket_id=ticket.id, status=ticket.status, clock=clock, paused=ticket.status == Status.awaiting_citizen,
        sign_due=ticket.sign_due, reply_due=ticket.reply_due, sign_left_s=None, reply_left_s=None,
        yellow_at=None, fraction=None, light=None,
    )
    if ticket.sign_due is not None and ticket.signed_at is None:
        info.sign_left_s = _left(timing, clock, now, ticket.sign_due)
    if ticket.reply_due is not None:
        info.reply_left_s = _left(timing, clock, now, ticket.reply_due)
        start = ticket.dispatched_at
        if start is not None and start < ticket.reply_due:
            cal = timing.calendar
            info.fraction = round(remaining_fraction(cal, clock, start, ticket.reply_due, now), 4)
            info.light = deadline_light(cal, clock, start, ticket.reply_due, now)
            info.yellow_at = reminder_moment(cal, clock, start, ticket.reply_due, 0.75)
        else:
            info.light = "red" if now > ticket.reply_due else "yellow"
            info.yellow_at = start or ticket.reply_due
    return info


def working_periods(timing: Timing, now: datetime, days: int = 15) -> list[tuple[datetime, datetime]]:
    """Office periods from today (city time) on, for the browser's countdowns."""
    cal = timing.calendar
    today = now.astimezone(cal.tz).date()
    periods = []
    for i in range(days):
        d = today + timedelta(days=i)
        if not cal.is_working_day(d):
            continue
        for opening, closing in cal.office_hours:
            periods.append((datetime.combine(d, opening, cal.tz), datetime.combine(d, closing, cal.tz)))
    return periods


def _open_flags(session: Any, ticket_ids: list[int]) -> dict[int, tuple[bool, bool]]:
    """Open supervision orders and accountability cases, from the ticket histories (events are the truth)."""
    if not ticket_ids:
        return {}
    rows = session.execute(
        select(TicketEvent.ticket_id, TicketEvent.type, TicketEvent.data)
        .where(
            TicketEvent.ticket_id.in_(ticket_ids),
            TicketEvent.type.in_(("supervise", "respond_supervision", "accountability")),
        )
        .order_by(TicketEvent.id)
    ).all()
    state: dict[int, list[bool]] = {}
    for tid, type_, data in rows:
        flags = state.setdefault(tid, [False, False])
        if type_ == "supervise":
            flags[0] = True
        elif type_ == "respond_supervision":
            flags[0] = False
        else:
            decision = (data or {}).get("decision", "open")
            flags[1] = decision == "open"
    return {tid: (f[0], f[1]) for tid, f in state.items()}


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
        wanted = [int(x) for x in ids.split(",") if x.strip()][:500]
    except ValueError as exc:
        raise Invalid("ids must be comma-separated integers", field="ids") from exc
    now = datetime.now(UTC)
    tickets = session.scalars(visible_tickets(actor).where(Ticket.id.in_(wanted))).all() if wanted else []
    flags = _open_flags(session, [t.id for t in tickets])
    out: dict[int, DeadlineInfo] = {}
    for t in tickets:
        info = deadline_info(services.timing, t, now)
        info.supervision_open, info.accountability_open = flags.get(t.id, (False, False))
        out[t.id] = info
    return DeadlinesOut(server_time=now, periods=working_periods(services.timing, now), tickets=out)


# --- queues -------------------------------------------------------------------------------------------------------


class DeskTicket(views.TicketOut):
    deadline: DeadlineInfo | None = None


def _desk_tickets(session: Any, services: Any, actor: Any, stmt: Any, now: datetime) -> list[DeskTicket]:
    rows = session.scalars(stmt.options(*views.ticket_load_options())).all()
    flags = _open_flags(session, [t.id for t in rows])
    out = []
    for t in rows:
        info = deadline_info(services.timing, t, now)
        info.supervision_open, info.accountability_open = flags.get(t.id, (False, False))
        out.append(DeskTicket(**views.ticket_out(t, actor).model_dump(), deadline=info))
    return out


class QueueOut(BaseModel):
    server_time: datetime
    periods: list[tuple[datetime, datetime]]
    items: list[DeskTicket]


@router.get("/triage", response_model=QueueOut)
def triage_queue(session: SessionDep, services: ServicesDep, actor: UserDep) -> QueueOut:
    """The front desk's live queue: received, returned and reopened tickets; urgent first, then oldest."""
    require(actor, *FRONT_DESK)
    now = datetime.now(UTC)
    stmt = (
        visible_tickets(actor)
        .where(Ticket.status.in_(TRIAGE_STATES))
        .order_by(Ticket.urgent.desc(), Ticket.received_at.asc(), Ticket.id.asc())
        .limit(200)
    )
    return QueueOut(server_time=now, periods=[], items=_desk_tickets(session, services, actor, stmt, now))


UNIT_OPEN = (Status.dispatched, Status.signed, Status.reopened, Status.awaiting_citizen, Status.returned)


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
    states = UNIT_OPEN if view == "open" else (Status.replied,)
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


@router.get("/callbacks", response_model=QueueOut)
def callback_queue(session: SessionDep, services: ServicesDep, actor: UserDep) -> QueueOut:
    """回访: replied or directly answered tickets waiting for the callback, the longest-waiting first."""
    require(actor, *FRONT_DESK)
    now = datetime.now(UTC)
    stmt = (
        visible_tickets(actor)
        .where(Ticket.status.in_(CALLBACK_STATES))
        .order_by(Ticket.replied_at.is_(None), Ticket.replied_at.asc(), Ticket.id.asc())
        .limit(200)
    )
    return QueueOut(server_time=now, periods=[], items=_desk_tickets(session, services, actor, stmt, now))


# --- screen-pop -------------------------------------------------------------------------------------------------


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
    """Screen-pop for an incoming call: who is calling and what they asked before (agents only)."""
    require(actor, Role.agent)
    normalized = phone.replace(" ", "").replace("-", "")
    if not _PHONE.match(normalized):
        raise Invalid("phone must be digits, e.g. 13800001234", field="phone")
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
        phone=normalized,
        citizens=[views.CitizenOut(id=c.id, name=c.name, phone=c.phone) for c in citizens],
        tickets=[views.ticket_out(t, actor) for t in tickets],
    )


# --- supervisor board -------------------------------------------------------------------------------------------


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
        base.where(Ticket.status.in_(OVERDUE_STATES), Ticket.reply_due.is_not(None))
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
            base.where(Ticket.status.in_(OVERDUE_STATES), Ticket.reply_due < now).subquery()
        )
    ) or 0
    open_count = session.scalar(
        select(func.count()).select_from(base.where(Ticket.status.in_(OVERDUE_STATES)).subquery())
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


# --- presence ---------------------------------------------------------------------------------------------------


@router.get("/presence")
async def presence(request: Request, actor: UserDep) -> dict[str, Any]:
    """Who is online, per role and unit, across all workers (supervisors and admins)."""
    require(actor, *SUPERVISORS)
    hub = request.app.state.desk_hub
    snapshot: dict[str, Any] = await hub.presence()
    return snapshot


__all__ = ["deadline_info", "router", "working_periods"]
