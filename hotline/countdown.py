"""What a ticket's countdown shows on the desk: remaining working time, the traffic light, stopped clocks.

Decision: the server knows the working calendar, the browser does not. So the server computes, per ticket, the
remaining *working* seconds at ``server_time`` plus the working periods of the next two weeks; the page ticks a
countdown down only while ``now`` lies inside one of those periods (clock time for urgent tickets, which run 7×24).
Colours are re-evaluated in the browser from two moments the server gives: ``reply_due`` (red after it) and
``yellow_at`` (the moment 75 % of the allowed time is used, i.e. ≤ 25 % left), so a ticket turns red on an open
board without any message from the server.

A paused ticket (待补充, or a send-back waiting for the centre's decision) shows its remaining time without
counting down; for a send-back the info also says how long the centre has kept it waiting (working time), which
the supervisors' board shows: that wait is the centre's, not the unit's.

Once a ticket is answered (replied, directly answered, called back, closed, merged, transferred) its clock has
stopped: the info says ``stopped`` with the moment (``done_at``), whether that was within the reply deadline
(``on_time``) and by how much (working) time it was late (``late_s``); there is nothing left to count down.

The 督办/问责 flags are read from ``supervision_orders`` and ``accountability_cases`` (projections written in the
same transaction as their events), per unit: a unit handler's flags say whether *its* order or case is open; a
co-unit's order does not light up the lead unit's card and one unit's answer does not clear another's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select

from hotline.models import AccountabilityCase, Status, SupervisionOrder, Ticket
from hotline.states import PAUSED_STATES, STOPPED_STATES
from hotline.timing import Timing
from routing.deadlines import deadline_light, remaining_fraction, reminder_moment


class DeadlineInfo(BaseModel):
    ticket_id: int
    status: str
    clock: bool  # True: urgent, counts clock time 7×24; False: working time
    paused: bool  # 待补充 or 退单待处理: the unit's clock stands still
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
    #: a send-back waiting for the centre's decision: since when, and how long (working time) the centre has taken
    centre_waiting_since: datetime | None = None
    centre_waiting_s: float | None = None


def _left(timing: Timing, clock: bool, now: datetime, due: datetime) -> float:
    if clock:
        return (due - now).total_seconds()
    return timing.calendar.working_time_between(now, due).total_seconds()


def deadline_info(timing: Timing, ticket: Ticket, now: datetime) -> DeadlineInfo:
    clock = bool(ticket.urgent)
    info = DeadlineInfo(
        ticket_id=ticket.id, status=ticket.status, clock=clock, paused=ticket.status in PAUSED_STATES,
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
    if ticket.status == Status.returned and ticket.paused_at is not None:
        info.centre_waiting_since = ticket.paused_at
        info.centre_waiting_s = timing.calendar.working_time_between(ticket.paused_at, now).total_seconds()
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


def open_flags(session: Any, actor: Any, ticket_ids: list[int]) -> dict[int, tuple[datetime | None, bool]]:
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


def with_flags(info: DeadlineInfo, flags: tuple[datetime | None, bool] | None) -> DeadlineInfo:
    if flags is not None:
        info.supervision_due, info.accountability_open = flags
        info.supervision_open = flags[0] is not None
    return info
