"""Leased work queues in a table (the outbox, the attachment store): rows due for another attempt, or whose holder's
lease ran out (it crashed), are claimed by one process at a time — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
single writer on SQLite — marked as being worked on with a lease, and their attempt counted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session


def claim_due(session: Session, model: Any, *, waiting: str, working: str, channels: list[str], now: datetime,
              limit: int, lease: timedelta) -> list[int]:
    """Claim up to ``limit`` rows of ``model`` for ``channels``: ``waiting`` ones whose next attempt is due and
    ``working`` ones whose lease has run out, oldest first. Returns their ids, now ``working`` until the lease ends."""
    due = or_((model.state == waiting) & (model.next_attempt_at <= now),
              (model.state == working) & (model.lease_until < now))
    pick = (select(model.id).where(due, model.channel.in_(channels))
            .order_by(model.next_attempt_at, model.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list(session.scalars(pick))
    if ids:
        session.execute(update(model).where(model.id.in_(ids))
                        .values(state=working, lease_until=now + lease, attempts=model.attempts + 1))
    return ids
