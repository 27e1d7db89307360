"""Accountability (问责) cases from the database: the sweep over the event log and the once-only insert.

The rules themselves (which histories open a case, the labels) are ``routing.accountability``.

Exactly once: each automatic case has ``dedupe_key = rule:ticket:unit`` (unique) and is inserted with
``INSERT … ON CONFLICT DO NOTHING RETURNING id``; only a worker whose insert returned an id records the event, so two
sweeps at once (or a sweep re-reading the overlap of the event log) never open or announce a case twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from hotline.auth import SYSTEM
from hotline.models import AccountabilityCase, SweepCursor, Ticket, TicketEvent
from hotline.workflow import record_event
from routing.accountability import (
    CURSOR,
    EPOCH,
    OVERLAP,
    REFUSALS_FOR_CASE,
    RULE_LABELS,
    closed_unsolved_after_reopen,
    dedupe_key,
    refused_returns_due,
)


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def open_case_once(
    session: Session, ticket: Ticket, unit_id: int, rule: str, reason: str, now: datetime
) -> int | None:
    """Open an automatic case and announce it, unless this rule already did for this ticket and unit.

    Returns the new case id, or None when it existed. The announcement is an ``accountability`` event (by the
    system), published after commit to the unit and the supervisors.
    """
    stmt = (
        _insert(session)(AccountabilityCase)
        .values(
            ticket_id=ticket.id, unit_id=unit_id, state="opened", rule=rule, reason=reason,
            dedupe_key=dedupe_key(rule, ticket.id, unit_id), opened_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(AccountabilityCase.id)
    )
    case_id: int | None = session.execute(stmt).scalar_one_or_none()
    if case_id is None:
        return None
    record_event(
        session, ticket, "accountability", SYSTEM, note=reason,
        data={"decision": "open", "rule": rule, "case_ids": [case_id], "unit_id": unit_id, "automatic": True},
        now=now,
    )
    return case_id


def _cursor(session: Session) -> datetime:
    session.execute(
        _insert(session)(SweepCursor).values(name=CURSOR, at=EPOCH).on_conflict_do_nothing(index_elements=["name"])
    )
    stmt = select(SweepCursor.at).where(SweepCursor.name == CURSOR)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()  # one rule pass at a time; the other worker then re-reads the moved cursor
    return session.execute(stmt).scalar_one()


def sweep_rules(
    session: Session, now: datetime, batch: int = 5000, *, refusals: int = REFUSALS_FOR_CASE, reopens: int = 1
) -> dict[str, int]:
    """Apply the log-reading rules to events since the cursor; returns cases opened per rule.

    ``refusals`` and ``reopens`` are the rules' thresholds (settings ``HOTLINE_ACCOUNTABILITY_REFUSALS`` and
    ``HOTLINE_ACCOUNTABILITY_REOPENS``).
    """
    since = _cursor(session) - OVERLAP
    rows = session.execute(
        select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.type, TicketEvent.data, TicketEvent.created_at)
        .where(
            TicketEvent.type.in_(("refuse_return", "close")),
            TicketEvent.created_at > since,
            TicketEvent.created_at <= now,
        )
        .order_by(TicketEvent.created_at, TicketEvent.id)
        .limit(batch)
    ).all()
    if not rows:
        return {}
    opened: dict[str, int] = {}
    refused_tickets = {r.ticket_id for r in rows if r.type == "refuse_return"}
    closes = [r for r in rows if r.type == "close" and (r.data or {}).get("solved") is False]
    history = session.execute(
        select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.type, TicketEvent.data).where(
            TicketEvent.ticket_id.in_(refused_tickets | {r.ticket_id for r in closes}),
            TicketEvent.type.in_(("refuse_return", "reopen")),
        )
    ).all() if refused_tickets or closes else []
    pairs = refused_returns_due(
        ((h.ticket_id, (h.data or {}).get("unit_id")) for h in history if h.type == "refuse_return"), refusals
    )
    pairs = [p for p in pairs if p[0] in refused_tickets]
    reopen_ids: dict[int, list[int]] = {}
    for h in history:
        if h.type == "reopen":
            reopen_ids.setdefault(h.ticket_id, []).append(h.id)
    unsolved = [
        (r.ticket_id, r.data.get("unit_id"))
        for r in closes
        if closed_unsolved_after_reopen(
            r.data, sum(1 for i in reopen_ids.get(r.ticket_id, ()) if i < r.id), reopens
        )
    ]
    todo = [("refused_returns", t, u) for t, u in pairs] + [
        ("closed_unsolved", t, u) for t, u in unsolved if isinstance(u, int)
    ]
    if todo:
        tickets = {
            t.id: t
            for t in session.scalars(
                select(Ticket)
                .where(Ticket.id.in_({t for _, t, _ in todo}))
                .options(selectinload(Ticket.co_units))  # the announcement goes to co-units too
            )
        }
        for rule, ticket_id, unit_id in todo:
            if open_case_once(session, tickets[ticket_id], unit_id, rule, RULE_LABELS[rule], now) is not None:
                opened[rule] = opened.get(rule, 0) + 1
    last = max(r.created_at for r in rows)
    session.execute(
        update(SweepCursor)
        .where(SweepCursor.name == CURSOR, SweepCursor.at < last)
        .values(at=last)
    )
    return opened
