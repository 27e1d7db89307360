"""Accountability (问责) rules the worker's sweep applies, and the once-only insert behind them.

Rules (DOMAIN.md "Measuring units": overdue tickets, unjustified send-backs and 'closed but unsolved' count against
the unit):

- ``overdue``: the ticket is overdue beyond the escalation threshold (N working days, ``HOTLINE_ESCALATE_AFTER_DAYS``,
  armed on the ticket as ``escalate_at``); opened in the same pass that raises the escalation notice, so once per
  escalation. Only tickets whose reply clock runs are swept (``workflow.DEADLINE_STATES``): a reopened ticket
  waiting for its re-dispatch cannot be overdue against the unit that answered the last round.
- ``refused_returns``: the same unit sent the same ticket back ``HOTLINE_ACCOUNTABILITY_REFUSALS`` times (default 2)
  and the dispatcher refused every one as unjustified (``refuse_return`` events naming the unit).
- ``closed_unsolved``: the ticket was reopened (重办) ``HOTLINE_ACCOUNTABILITY_REOPENS`` times (default 1) and still
  closed with the citizen saying "not solved". A close after failed callback attempts (``unreachable``, citizen
  never reached) says nothing about the solution and never counts.

Exactly once: each automatic case has ``dedupe_key = rule:ticket:unit`` (unique) and is inserted with
``INSERT … ON CONFLICT DO NOTHING RETURNING id``; only a worker whose insert returned an id records the event, so two
sweeps at once (or a sweep re-reading the overlap of the event log) never open or announce a case twice.

The log-reading rules follow a cursor (``sweep_cursors``): each sweep reads ``refuse_return`` and ``close`` events
created after ``cursor - OVERLAP`` (a transaction that commits a little late is still seen), in pages of ``batch``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "OVERLAP",
    "RULE_LABELS",
    "closed_unsolved_after_reopen",
    "dedupe_key",
    "refused_returns_due",
]

OVERLAP = timedelta(minutes=10)
REFUSALS_FOR_CASE = 2
CURSOR = "accountability"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

RULE_LABELS: Mapping[str, str] = {
    "manual": "督办员启动问责",
    "overdue": "超期未办结超过{days}个工作日，自动启动问责",
    "refused_returns": "同一工单两次退单均被驳回（无理退单），自动启动问责",
    "closed_unsolved": "工单重办后仍以“未解决”归档，自动启动问责",
}


# --- pure rule checks ----------------------------------------------------------------------------------------


def dedupe_key(rule: str, ticket_id: int, unit_id: int) -> str:
    return f"{rule}:{ticket_id}:{unit_id}"


def refused_returns_due(
    refusals: Iterable[tuple[int, int | None]], minimum: int = REFUSALS_FOR_CASE
) -> list[tuple[int, int]]:
    """(ticket, unit) pairs with at least ``minimum`` refused send-backs, from ``(ticket_id, unit_id)`` of each."""
    counts = Counter((t, u) for t, u in refusals if u is not None)
    return sorted(pair for pair, n in counts.items() if n >= minimum)


def closed_unsolved_after_reopen(close_data: Mapping[str, Any], reopens_before: int, minimum: int = 1) -> bool:
    """A close whose callback said "not solved", after at least ``minimum`` reopens; never an unreachable close."""
    if close_data.get("unreachable"):
        return False
    return reopens_before >= minimum and close_data.get("solved") is False
