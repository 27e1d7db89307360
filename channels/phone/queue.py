"""The phone queue as the desk sees it: callers waiting in ``<Enqueue>`` for an agent (table ``queued_calls``).

- ``record_waiting``: the IVR put the caller in the queue (in the webhook's transaction: one insert; a replayed
  step finds the row and adds nothing).
- ``attach_ticket``: the worker made the draft ticket from the caller's transcript (in its transaction).
- ``record_left``: the caller left the queue without an agent: hung up (``abandoned``) or offered voicemail.
- ``claim_next``: the oldest waiting call becomes this agent's; race-safe (a conditional UPDATE: of two agents
  asking at once, one gets it, the other the next call or none), on SQLite and PostgreSQL alike.

Every change queues a desk notice (``hotline.events.desk_notice``, kind ``phone_queue``) published after the
commit to every open front desk, which then reloads ``GET /api/phone/queue`` (masked per role).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hotline.db import queue_event
from hotline.events import desk_notice
from hotline.models import InboundMessage, QueuedCall, Role

CHANNEL = "phone"
KIND = "phone_queue"
WAITING, TAKEN, ABANDONED, VOICEMAIL = "waiting", "taken", "abandoned", "voicemail"
LEFT = frozenset({ABANDONED, VOICEMAIL})
#: the desks that show the queue (the agent page admits agents, dispatchers and supervisors)
DESK_ROLES = [Role.agent, Role.dispatcher, Role.supervisor]


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _notice(session: Session, call: QueuedCall) -> None:
    queue_event(session, desk_notice(KIND, list(DESK_ROLES), queued_call_id=call.id, status=call.status,
                                     ticket_id=call.ticket_id))


def draft_ticket_id(session: Session, call_sid: str) -> int | None:
    """The ticket the call's transcript made (its stored message has the CallSid as external id)."""
    return session.scalar(select(InboundMessage.ticket_id).where(
        InboundMessage.channel == CHANNEL, InboundMessage.external_id == call_sid,
        InboundMessage.ticket_id.is_not(None)))


def record_waiting(session: Session, call_sid: str, from_number: str | None, now: datetime | None = None) -> None:
    """The caller is in the queue now (once per call: a replay or a second visit of the queue changes nothing)."""
    if not call_sid:
        return
    existing = session.scalar(select(QueuedCall).where(QueuedCall.call_sid == call_sid))
    if existing is not None:
        return
    call = QueuedCall(call_sid=call_sid, from_number=from_number or None, queued_at=_now(now), status=WAITING,
                      ticket_id=draft_ticket_id(session, call_sid))
    session.add(call)
    session.flush()
    _notice(session, call)


def attach_ticket(session: Session, call_sid: str, ticket_id: int) -> None:
    """The draft ticket of a waiting (or taken) call, so the screen-pop opens it."""
    call = session.scalar(select(QueuedCall).where(QueuedCall.call_sid == call_sid))
    if call is None or call.ticket_id is not None:
        return
    call.ticket_id = ticket_id
    session.flush()
    _notice(session, call)


def record_left(session: Session, call_sid: str, status: str, now: datetime | None = None) -> bool:
    """A waiting caller left the queue without an agent (``abandoned`` or ``voicemail``). False: not waiting."""
    if status not in LEFT:
        raise ValueError(f"a call leaves the queue as one of {sorted(LEFT)}, not {status!r}")
    call = session.scalar(select(QueuedCall).where(QueuedCall.call_sid == call_sid))
    if call is None:
        return False
    left = session.execute(
        update(QueuedCall).where(QueuedCall.id == call.id, QueuedCall.status == WAITING)
        .values(status=status, left_at=_now(now))
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(call)
    if not left:
        return False
    _notice(session, call)
    return True


def waiting_calls(session: Session, limit: int = 100) -> list[QueuedCall]:
    return list(session.scalars(
        select(QueuedCall).where(QueuedCall.status == WAITING).order_by(QueuedCall.queued_at, QueuedCall.id)
        .limit(limit)))


def claim_next(session: Session, user_id: int, now: datetime | None = None) -> QueuedCall | None:
    """The oldest waiting call, now taken by ``user_id``; None when nobody waits. The UPDATE's condition
    (``status = 'waiting'``) decides between agents asking at once: the loser tries the next call."""
    moment = _now(now)
    skipped: set[int] = set()
    while True:
        stmt = select(QueuedCall.id).where(QueuedCall.status == WAITING)
        if skipped:
            stmt = stmt.where(QueuedCall.id.not_in(skipped))
        candidate = session.scalar(stmt.order_by(QueuedCall.queued_at, QueuedCall.id).limit(1))
        if candidate is None:
            return None
        won = session.execute(
            update(QueuedCall).where(QueuedCall.id == candidate, QueuedCall.status == WAITING)
            .values(status=TAKEN, taken_by=user_id, taken_at=moment)
        ).rowcount  # type: ignore[attr-defined]
        if won:
            call = session.get(QueuedCall, candidate)
            assert call is not None
            session.refresh(call)
            if call.ticket_id is None:
                call.ticket_id = draft_ticket_id(session, call.call_sid)
            session.flush()
            _notice(session, call)
            return call
        skipped.add(candidate)


def release(session: Session, call: QueuedCall) -> None:
    """A claimed call Twilio no longer has (the caller hung up meanwhile): it left the queue, abandoned."""
    call.status = ABANDONED
    call.left_at = datetime.now(UTC)
    session.flush()
    _notice(session, call)
