"""Unit scorecards from the database: the assignments of a period read from the ticket histories, and the Excel
export. The rules (what counts as met, missed or pending, the composite) are ``routing.scorecards``."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.errors import Invalid
from hotline.models import Ticket, TicketEvent, Unit
from routing.calendar import WorkCalendar
from routing.scorecards import (
    CHUNK,
    DEFAULT_WEIGHTS,
    EVENT_TYPES,
    EventRow,
    Scorecard,
    assess_rounds,
    check_score_weights,
    rank_key,
)


def request_weights(given: Mapping[str, float | None], city: Mapping[str, float]) -> dict[str, float]:
    """The weights of one request: the city's (``HOTLINE_SCORE_WEIGHTS``), with those the request names replacing
    them. Raises ``Invalid`` (422) for a negative weight or when all of them end up zero."""
    merged = {**city, **{k: v for k, v in given.items() if v is not None}}
    try:
        return check_score_weights(merged)
    except ValueError as exc:
        raise Invalid(str(exc), field=next((f"w_{k}" for k, v in given.items() if v is not None), "weights")) from exc




def period_bounds(start: date, end: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """Days ``start``..``end`` inclusive, as ``[start 00:00, end+1 00:00)`` in the city's zone."""
    return datetime.combine(start, time.min, zone), datetime.combine(end + timedelta(days=1), time.min, zone)


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def compute_scorecards(
    session: Session,
    calendar: WorkCalendar,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    unit_ids: Iterable[int] | None = None,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> tuple[list[Scorecard], dict[int, tuple[str, str]]]:
    """Scorecards of every unit with a dispatch in ``[start, end)`` (or of ``unit_ids``), ranked by score.

    Also returns ``ticket id -> (number, title)`` for the drill-down.
    """
    wanted = set(unit_ids) if unit_ids is not None else None
    pairs: dict[int, set[int]] = {}  # unit -> tickets dispatched to it (each of its rounds is assessed below)
    for ticket_id, data in session.execute(
        select(TicketEvent.ticket_id, TicketEvent.data).where(
            TicketEvent.type == "dispatch", TicketEvent.created_at >= start, TicketEvent.created_at < end
        )
    ):
        unit = (data or {}).get("unit_id")
        if isinstance(unit, int) and (wanted is None or unit in wanted):
            pairs.setdefault(unit, set()).add(ticket_id)
    ticket_ids = sorted({t for ts in pairs.values() for t in ts})
    events: dict[int, list[EventRow]] = {}
    info: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(ticket_ids):
        for row in session.execute(
            select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.type, TicketEvent.unit_id, TicketEvent.data,
                   TicketEvent.created_at)
            .where(TicketEvent.ticket_id.in_(chunk), TicketEvent.type.in_(EVENT_TYPES))
            .order_by(TicketEvent.ticket_id, TicketEvent.id)
        ):
            events.setdefault(row.ticket_id, []).append(
                EventRow(row.id, row.type, row.unit_id, row.data or {}, row.created_at)
            )
        for tid, number, title in session.execute(
            select(Ticket.id, Ticket.number, Ticket.title).where(Ticket.id.in_(chunk))
        ):
            info[tid] = (number, title)
    unit_ids_all = set(pairs) | (wanted or set())
    names = {uid: name for uid, name in session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids_all)))}
    cards: list[Scorecard] = []
    for unit_id in sorted(set(pairs) | (wanted or set())):
        assignments = []
        for ticket_id in sorted(pairs.get(unit_id, ())):
            for found in assess_rounds(events.get(ticket_id, []), unit_id, start, end, now, calendar):
                found.ticket_id = ticket_id
                assignments.append(found)
        cards.append(Scorecard(unit_id, names.get(unit_id, f"#{unit_id}"), assignments, dict(weights)))
    cards.sort(key=lambda c: rank_key(c.figures()["score"], c.unit_id))
    return cards, info


def scorecards_xlsx(
    cards: Sequence[Scorecard], info: Mapping[int, tuple[str, str]], start: date, end: date, zone: tzinfo
) -> bytes:
    """Ranking sheet (单位考核) and one line per ticket and unit (工单明细), Chinese headers; the detail says for each
    ticket what it added to the unit's composite score and what it could have added (the sum is the score)."""
    labels = {"met": "达标", "missed": "未达标", "pending": "待定", "na": "不适用"}
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "单位考核"
    sheet.append([f"考核期：{start.isoformat()} 至 {end.isoformat()}"])
    sheet.append(["排名", "单位", "派单量", "响应率", "解决率", "满意率", "按时办结率", "超期件数", "退单次数",
                  "无理退单（被驳回）", "平均办理时长（工作小时）", "90%办理时长（工作小时）", "综合得分"])
    for rank, card in enumerate(cards, start=1):
        f = card.figures()
        sheet.append([rank, card.unit_name, f["dispatched"], f["response_rate"], f["resolution_rate"],
                      f["satisfaction_rate"], f["on_time_rate"], f["overdue"], f["send_backs"],
                      f["send_backs_refused"], f["handling_hours_avg"], f["handling_hours_p90"], f["score"]])
        for col in "DEFG":
            sheet[f"{col}{sheet.max_row}"].number_format = "0.0%"
    sheet.freeze_panes = "A3"
    detail = workbook.create_sheet("工单明细")
    detail.append(["单位", "工单编号", "标题", "派单时间", "响应（签收）", "按时办结", "办理时长（工作小时）",
                   "回访满意度", "是否解决", "退单次数", "被驳回退单次数", "计入综合得分", "可得分"])
    satisfaction = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}
    solved = {"met": "是", "missed": "否", "pending": "待回访", "na": "不适用"}
    for card in cards:
        for a, part in zip(card.assignments, card.contributions(), strict=True):
            number, title = info.get(a.ticket_id, (str(a.ticket_id), ""))
            detail.append([
                card.unit_name, number, title, a.dispatched_at.astimezone(zone).replace(tzinfo=None),
                labels[a.response], labels[a.on_time], a.handling_hours,
                satisfaction.get(a.satisfaction_value or "", labels[a.satisfaction]),
                solved[a.resolution], len(a.send_backs), len(a.send_backs_refused), part["earned"], part["possible"],
            ])
    detail.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
