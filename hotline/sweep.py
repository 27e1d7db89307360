"""Deadline sweeps (75 % reminder, overdue, escalation), once per threshold per ticket, plus the
accountability rules (问责, ``routing.accountability``) and overdue supervision orders (督办).

Each threshold is one indexed ``UPDATE … WHERE notice_level < n AND threshold <= now RETURNING id``: the row
lock makes a second worker's identical UPDATE skip rows the first already raised, so several workers (or the
embedded sweep plus a real worker) never send the same notice twice, and no advisory lock is needed. Plain Core
UPDATEs leave the ticket's version alone, so a sweep never makes a user's action fail with 409.

The sweep runs in ``hotline worker`` (``hotline.worker``), or inside the server process in the embedded mode
(``make run``, SQLite) so the demo city is alive.

Decisions:
- Only tickets in ``hotline.states.DEADLINE_STATES`` (dispatched, signed) are chased; a send-back waiting for the
  centre (returned) stops the unit's clock. Every other state
  carries ``notice_level = workflow.NOTICES_DONE``, which keeps it out of the partial indexes
  ``ix_tickets_sweep_*``: the sweep reads only rows that are due or nearly so, however much history the city
  has (``bench/sweep_1m.py``).
- The thresholds are settings (``hotline.settings.RuleSettings``): the escalation's N working days
  (``HOTLINE_ESCALATE_AFTER_DAYS``, armed on each ticket by ``Timing``, worded in the case reason here) and the
  accountability rules' counts (``HOTLINE_ACCOUNTABILITY_REFUSALS``, ``HOTLINE_ACCOUNTABILITY_REOPENS``).
- Events the sweep raises carry the ticket's co-units (loaded with ``selectinload``), so co-units hear them live.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.orm import Session, selectinload

from hotline import metrics, workflow
from hotline.accountability import open_case_once, sweep_rules
from hotline.auth import SYSTEM
from hotline.db import transaction
from hotline.models import SupervisionOrder, Ticket
from hotline.services import Services
from hotline.settings import RuleSettings
from hotline.states import DEADLINE_STATES, sorted_states
from routing.accountability import RULE_LABELS

log = logging.getLogger(__name__)
ACTIVE = sorted_states(DEADLINE_STATES)
THRESHOLDS: tuple[tuple[int, str, str], ...] = (
    (1, "reply_warn_at", "deadline_warning"),  # 75 % of the time used: 催办 reminder to the unit
    (2, "reply_due", "overdue"),  # 超期: the unit and supervisors are told
    (3, "escalate_at", "escalation"),  # overdue by N working days: supervisors escalate (督办/问责)
)
NOTES = {
    "deadline_warning": "办理时限已过75%，请抓紧办理（系统催办）",
    "overdue": "已超过答复时限（系统提醒）",
    "escalation": "超期未办结，已提请督办",
}


def due_query(level: int, column_name: str, now: datetime, batch: int) -> Select[int]:
    """The ids of tickets due for threshold ``level``, earliest first.

    ``ORDER BY`` the threshold is what keeps this on the partial index: PostgreSQL estimates ``threshold <= now``
    from the whole table, where the finished tickets' past thresholds make it look unselective (measured: a
    680 ms sequential scan per threshold at 1 M open + 2 M finished tickets); with the order and the LIMIT it
    walks the index that holds only tickets still waiting for this notice and stops after ``batch`` rows.
    """
    column: ColumnElement[Any] = getattr(Ticket, column_name)
    return (
        select(Ticket.id)
        .where(Ticket.notice_level < level, column <= now, Ticket.status.in_(ACTIVE))
        .order_by(column)
        .limit(batch)
    )


def sweep(
    session: Session,
    now: datetime | None = None,
    batch: int = 5000,
    *,
    cases: dict[str, int] | None = None,
    rules: RuleSettings | None = None,
) -> dict[str, int]:
    """Raise every due notice and open every due accountability case once; returns how many notices of each kind.

    Cases opened per rule are added to ``cases`` when given (their announcements are ``accountability`` events).
    ``rules`` are the city's thresholds (default: the built-in defaults); its ``escalate_after_days`` only words the
    overdue case's reason, the escalation moment itself is precomputed on the ticket.
    """
    rules = rules or RuleSettings.model_construct()
    opened: dict[str, int] = {} if cases is None else cases
    now = now or datetime.now(UTC)
    sent: dict[str, int] = {}
    for level, column_name, event_type in THRESHOLDS:
        due_ids = due_query(level, column_name, now, batch).scalar_subquery()
        ids = list(
            session.execute(
                update(Ticket)
                .where(Ticket.id.in_(due_ids), Ticket.notice_level < level)
                .values(notice_level=level)
                .returning(Ticket.id)
                .execution_options(synchronize_session=False)
            ).scalars()
        )
        if not ids:
            continue
        tickets = session.scalars(
            select(Ticket)
            .where(Ticket.id.in_(ids))
            .options(selectinload(Ticket.co_units))
            .execution_options(populate_existing=True)
        ).all()
        for ticket in tickets:
            due = getattr(ticket, column_name)
            workflow.record_event(
                session,
                ticket,
                event_type,
                SYSTEM,
                note=NOTES[event_type],
                data={"threshold": due.isoformat() if due else None, "reply_due": _iso(ticket.reply_due),
                      "unit_id": ticket.lead_unit_id},
                now=now,
            )
            if event_type == "escalation" and ticket.lead_unit_id is not None:
                reason = RULE_LABELS["overdue"].format(days=rules.escalate_after_days)
                if open_case_once(session, ticket, ticket.lead_unit_id, "overdue", reason, now) is not None:
                    opened["overdue"] = opened.get("overdue", 0) + 1
        sent[event_type] = len(ids)
    refusals, reopens = rules.accountability_refusals, rules.accountability_reopens
    for rule, n in sweep_rules(session, now, batch, refusals=refusals, reopens=reopens).items():
        opened[rule] = opened.get(rule, 0) + n
    late = _late_supervision_orders(session, now, batch)
    if late:
        sent["supervision_overdue"] = late
    return sent


def _late_supervision_orders(session: Session, now: datetime, batch: int) -> int:
    """督办 orders past their due date without a written response: told once (same UPDATE … RETURNING pattern)."""
    due_ids = (
        select(SupervisionOrder.id)
        .where(SupervisionOrder.state == "open", ~SupervisionOrder.overdue_notified, SupervisionOrder.due_at <= now)
        .limit(batch)
        .scalar_subquery()
    )
    rows = session.execute(
        update(SupervisionOrder)
        .where(SupervisionOrder.id.in_(due_ids), ~SupervisionOrder.overdue_notified)
        .values(overdue_notified=True)
        .returning(SupervisionOrder.id, SupervisionOrder.ticket_id, SupervisionOrder.unit_id, SupervisionOrder.due_at)
        .execution_options(synchronize_session=False)
    ).all()
    if not rows:
        return 0
    tickets = {
        t.id: t
        for t in session.scalars(
            select(Ticket).where(Ticket.id.in_({r.ticket_id for r in rows})).options(selectinload(Ticket.co_units))
        )
    }
    for r in rows:
        workflow.record_event(
            session, tickets[r.ticket_id], "supervision_overdue", SYSTEM,
            note="督办件已到回复期限，承办单位尚未书面回复（系统提醒）",
            data={"order_id": r.id, "unit_id": r.unit_id, "due_at": r.due_at.isoformat()}, now=now,
        )
    return len(rows)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def sweep_once(services: Services, now: datetime | None = None) -> dict[str, int]:
    cases: dict[str, int] = {}
    with metrics.timed(metrics.SWEEP_DURATION), transaction(services.sessions) as session:
        sent = sweep(session, now, cases=cases, rules=services.settings)
    if cases:
        log.info("accountability cases opened: %s", cases)
    return sent
