"""REST endpoints the desk needs beyond the core API, under ``/api/desk``.

They reuse the core's dependencies (session, services, authenticated user) and ``visible_tickets`` so the rules
are the REST API's own: a unit handler only ever reads its unit's tickets (lead or co-unit).

Deadline decision: the server knows the working calendar, the browser does not. So the server computes, per
ticket, the remaining *working* seconds at ``server_time`` plus the working periods of the next two weeks; the
page ticks a countdown down only while ``now`` lies inside one of those periods (clock time for urgent tickets,
which run 7×24). Colours are re-evaluated in the browser from two moments the server gives: ``reply_due`` (red
after it) and ``yellow_at`` (the moment 75 % of the allowed time is used, i.e. ≤ 25 % left), so a ticket turns
red on an open board without any message from the server.

Once a ticket is answered (replied, directly answered, called back, closed, merged, transferred) its clock has
stopped: the info says ``stopped`` with the moment (``done_at``), whether that was within the reply deadline
(``on_time``) and by how much (working) time it was late (``late_s``); there is nothing left to count down.

The 督办/问责 flags are read from ``supervision_orders`` and ``accountability_cases`` (projections written in the
same transaction as their events), per unit: a unit handler's flags say whether *its* order or case is open; a
co-unit's order does not light up the lead unit's card and one unit's answer does not clear another's.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import func, select

from hotline import views
from hotline.api import OVERDUE_STATES, ServicesDep, SessionDep, UserDep, require, visible_tickets
from hotline.errors import Invalid
from hotline.labels import CHANNEL_LABELS
from hotline.models import (
    AccountabilityCase,
    Area,
    Category,
    Citizen,
    Role,
    Status,
    SupervisionOrder,
    Ticket,
)
from hotline.timing import Timing
from nlp.duplicates import DuplicateIndex, HotSpot
from routing.deadlines import deadline_light, remaining_fraction, reminder_moment

router = APIRouter(prefix="/api/desk", tags=["desk"])

SUPERVISORS = (Role.supervisor, Role.admin)
FRONT_DESK = (Role.agent, Role.dispatcher, Role.supervisor)
TRIAGE_STATES = (Status.received, Status.returned, Status.reopened)
CALLBACK_STATES = (Status.replied, Status.answered)
# Answered one way or another: the reply clock has stopped.
STOPPED_STATES = frozenset({Status.replied, Status.answered, Status.callback, Status.closed, Status.merged,
                            Status.transferred})
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
    supervision_due: datetime | None = None  # the earliest due time of those orders
    accountability_open: bool = False  # a 问责 case waits for the unit's explanation
    stopped: bool = False  # answered one way or another: no countdown any more
    done_at: datetime | None = None  # when it was answered (replied_at, or closed_at for transfers)
    on_time: bool | None = None  # done_at within reply_due (None: no deadline or no moment known)
    late_s: float | None = None  # (working) seconds past reply_due at done_at; 0 when on time


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
    if ticket.status in STOPPED_STATES:
        info.stopped = True
        info.done_at = ticket.replied_at or ticket.closed_at
        if info.done_at is not None and ticket.reply_due is not None:
            info.on_time = info.done_at <= ticket.reply_due
            info.late_s = 0.0 if info.on_time else _left(timing, clock, ticket.reply_due, info.done_at)
        return info
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


def _open_flags(session: Any, actor: Any, ticket_ids: list[int]) -> dict[int, tuple[datetime | None, bool]]:
    """Per ticket: the earliest due time of its open 督办 orders (None: none open) and whether a 问责 case waits
    for an explanation. A unit handler's flags concern only orders and cases addressed to their own unit."""
    if not ticket_ids:
        return {}
    orders = (
        select(SupervisionOrder.ticket_id, func.min(SupervisionOrder.due_at))
        .where(SupervisionOrder.ticket_id.in_(ticket_ids), SupervisionOrder.state == "open")
        .group_by(SupervisionOrder.ticket_id)
    )
    cases = (
        select(AccountabilityCase.ticket_id)
        .where(AccountabilityCase.ticket_id.in_(ticket_ids), AccountabilityCase.state == "opened")
        .distinct()
    )
    if actor.is_unit:
        orders = orders.where(SupervisionOrder.unit_id == actor.unit_id)
        cases = cases.where(AccountabilityCase.unit_id == actor.unit_id)
    due: dict[int, datetime] = {tid: at for tid, at in session.execute(orders)}
    opened = set(session.scalars(cases))
    return {tid: (due.get(tid), tid in opened) for tid in set(due) | opened}


def _with_flags(info: DeadlineInfo, flags: tuple[datetime | None, bool] | None) -> DeadlineInfo:
    if flags is not None:
        info.supervision_due, info.accountability_open = flags
        info.supervision_open = flags[0] is not None
    return info


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
    flags = _open_flags(session, actor, [t.id for t in tickets])
    out = {t.id: _with_flags(deadline_info(services.timing, t, now), flags.get(t.id)) for t in tickets}
    return DeadlinesOut(server_time=now, periods=working_periods(services.timing, now), tickets=out)


# --- queues -------------------------------------------------------------------------------------------------------


class DeskTicket(views.TicketOut):
    deadline: DeadlineInfo | None = None


def _desk_tickets(session: Any, services: Any, actor: Any, stmt: Any, now: datetime) -> list[DeskTicket]:
    rows = session.scalars(stmt.options(*views.ticket_load_options())).all()
    flags = _open_flags(session, actor, [t.id for t in rows])
    return [
        DeskTicket(**views.ticket_out(t, actor).model_dump(),
                   deadline=_with_flags(deadline_info(services.timing, t, now), flags.get(t.id)))
        for t in rows
    ]


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
#: the states each tab of the unit desk lists
UNIT_VIEWS = {"open": UNIT_OPEN, "replied": (Status.replied,)}


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
    states = UNIT_VIEWS[view]
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


# --- hot spots ----------------------------------------------------------------------------------------------------

HOTSPOT_ROLES = (Role.agent, Role.dispatcher, Role.supervisor, Role.admin)
HOTSPOT_HOLD = timedelta(days=7)  # the longest window a caller may ask for
HOTSPOT_OPEN = frozenset({Status.received, Status.dispatched, Status.signed, Status.returned, Status.reopened,
                          Status.awaiting_citizen})
_HOTSPOT_CHUNK = 500
_hotspot_create = threading.Lock()


class HotSpotTicket(BaseModel):
    id: int
    number: str
    title: str
    status: str
    received_at: datetime


class HotSpotOut(BaseModel):
    key: str  # the cluster's first ticket id: stable while a burst grows, for the page's open/closed state
    area_id: int | None
    area_name: str | None
    area_path: list[str]  # names from the city down to the cluster's area
    size: int
    open_count: int  # members still being handled (not answered, merged, transferred, replied or closed)
    first_at: datetime
    last_at: datetime
    top_terms: list[str]
    ticket_ids: list[int]  # oldest first
    sample_titles: list[str]  # up to three distinct titles, newest first
    tickets: list[HotSpotTicket]  # newest first, at most 100


class HotSpotsOut(BaseModel):
    server_time: datetime
    hours: float
    min_size: int
    min_score: float
    scanned: int  # tickets received in the window with a known area
    clusters: list[HotSpotOut]


class HotSpotIndex:
    """This process's duplicate index over every ticket received lately, kept in step with the database.

    The database is the source of truth: each call lists the ids (and areas) received in the held span — a
    cheap indexed query without texts — and only segments the tickets it has not seen (or whose area changed),
    so the page's live refreshes cost one small query and the clustering. It holds every ticket received in the
    span whatever its state: a burst is about arrivals, and agents merging the reports of one incident (并案)
    must not make the incident's hot spot disappear. The held span grows to the longest window asked for.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index = DuplicateIndex(window=HOTSPOT_HOLD)
        self.loaded: dict[int, int | None] = {}  # ticket id -> area id it was indexed with
        self.span = timedelta(0)
        self.areas: dict[int, tuple[str, str, int | None]] = {}  # id -> (code, name, parent id)
        self.by_code: dict[str, int] = {}

    @classmethod
    def of(cls, app: Any) -> HotSpotIndex:
        with _hotspot_create:
            found = getattr(app.state, "desk_hotspots", None)
            if found is None:
                found = app.state.desk_hotspots = cls()
            assert isinstance(found, cls)
            return found

    def _sync_areas(self, session: Any) -> None:
        areas = {a_id: (code, name, parent) for a_id, code, name, parent in session.execute(
            select(Area.id, Area.code, Area.name, Area.parent_id))}
        if areas != self.areas:
            self.areas = areas
            self.by_code = {code: a_id for a_id, (code, _, _) in areas.items()}
            self.index.set_places({code: areas[parent][0] if parent in areas else None
                                   for code, _, parent in areas.values()})

    def spots(self, session: Any, now: datetime, window: timedelta, min_size: int,
              min_score: float) -> tuple[list[HotSpot], int]:
        """Clusters in ``(now - window, now]`` and how many tickets with a known area that window holds."""
        with self.lock:
            self._sync_areas(session)
            self.span = max(self.span, window)
            rows = session.execute(
                select(Ticket.id, Ticket.area_id, Ticket.received_at).where(Ticket.received_at >= now - self.span)
            ).all()
            current = {tid: area_id for tid, area_id, _ in rows}
            for tid in [t for t in self.loaded if t not in current]:
                self.index.remove(tid)
                del self.loaded[tid]
            todo = [tid for tid, area_id in current.items() if tid not in self.loaded or self.loaded[tid] != area_id]
            for i in range(0, len(todo), _HOTSPOT_CHUNK):
                chunk = todo[i:i + _HOTSPOT_CHUNK]
                found = session.execute(
                    select(Ticket.id, Ticket.title, Ticket.text, Ticket.area_id, Ticket.received_at)
                    .where(Ticket.id.in_(chunk))
                ).all()
                self.index.add_many(
                    (r.id, f"{r.title} {r.text}", self.areas[r.area_id][0] if r.area_id in self.areas else None,
                     r.received_at)
                    for r in found
                )
                self.loaded.update({r.id: r.area_id for r in found})
            since = now - window
            scanned = sum(1 for _, area_id, at in rows if area_id is not None and since <= at <= now)
            spots = self.index.hot_spots(min_size=min_size, min_score=min_score, at=now, window=window)
            return spots, scanned

    def area_path(self, area_id: int | None) -> list[str]:
        names: list[str] = []
        seen: set[int] = set()
        while area_id is not None and area_id in self.areas and area_id not in seen:
            seen.add(area_id)
            _, name, parent = self.areas[area_id]
            names.append(name)
            area_id = parent
        return list(reversed(names))


@router.get("/hotspots", response_model=HotSpotsOut)
def hotspots(
    request: Request,
    session: SessionDep,
    actor: UserDep,
    hours: Annotated[float, Query(gt=0, le=HOTSPOT_HOLD.total_seconds() / 3600)] = 2,
    min_size: Annotated[int, Query(ge=2, le=100)] = 3,
    min_score: Annotated[float, Query(ge=0.05, le=1)] = 0.2,
) -> HotSpotsOut:
    """热点/突发聚集: at least ``min_size`` similar requests in one area received within the last ``hours``.

    Similar = the duplicate index's cosine ≥ ``min_score``; one area = one branch of the area hierarchy (a
    report naming only the district joins a street's cluster, two streets never share one). Front desk and
    supervisors (units get 403: clusters span every unit's tickets). Biggest clusters first.
    """
    require(actor, *HOTSPOT_ROLES)
    now = datetime.now(UTC)
    cache = HotSpotIndex.of(request.app)
    spots, scanned = cache.spots(session, now, timedelta(hours=hours), min_size, min_score)
    members = [t for spot in spots for t in spot.ticket_ids if isinstance(t, int)]
    info: dict[int, HotSpotTicket] = {}
    for i in range(0, len(members), _HOTSPOT_CHUNK):
        for r in session.execute(
            select(Ticket.id, Ticket.number, Ticket.title, Ticket.text, Ticket.status, Ticket.received_at)
            .where(Ticket.id.in_(members[i:i + _HOTSPOT_CHUNK]))
        ):
            info[r.id] = HotSpotTicket(id=r.id, number=r.number, title=r.title or r.text[:30], status=r.status,
                                       received_at=r.received_at)
    clusters = []
    for spot in spots:
        tickets = [info[t] for t in spot.ticket_ids if isinstance(t, int) and t in info]
        if len(tickets) < min_size:
            continue  # deleted meanwhile
        newest = sorted(tickets, key=lambda t: (t.received_at, t.id), reverse=True)
        titles: list[str] = []
        for t in newest:
            if t.title not in titles:
                titles.append(t.title)
            if len(titles) == 3:
                break
        area_id = cache.by_code.get(spot.place_code) if spot.place_code else None
        path = cache.area_path(area_id)
        clusters.append(HotSpotOut(
            key=str(tickets[0].id), area_id=area_id, area_name=path[-1] if path else None, area_path=path,
            size=len(tickets), open_count=sum(1 for t in tickets if t.status in HOTSPOT_OPEN),
            first_at=spot.first_at, last_at=spot.last_at, top_terms=spot.top_terms,
            ticket_ids=[t.id for t in tickets], sample_titles=titles, tickets=newest[:100],
        ))
    return HotSpotsOut(server_time=now, hours=hours, min_size=min_size, min_score=min_score, scanned=scanned,
                       clusters=clusters)


# --- presence ---------------------------------------------------------------------------------------------------


@router.get("/presence")
async def presence(request: Request, actor: UserDep) -> dict[str, Any]:
    """Who is online, per role and unit, across all workers (supervisors and admins)."""
    require(actor, *SUPERVISORS)
    hub = request.app.state.desk_hub
    snapshot: dict[str, Any] = await hub.presence()
    return snapshot


__all__ = ["HotSpotIndex", "deadline_info", "router", "working_periods"]
