"""The durable half of the one intake point: accept a channel's message fast, turn it into a ticket later.

- ``accept`` (every channel webhook): the message is checked like any intake request, then stored under
  UNIQUE(channel, external_id) with one ``INSERT … ON CONFLICT DO NOTHING RETURNING id``; the caller commits and
  acknowledges. A retry of the same message (WeChat resends the same MsgId, Twilio replays a step) finds the row
  and creates nothing. Nothing is analysed here, so a channel that must answer within 5 s never waits for the model.
- ``process_pending`` (the worker, or the server itself on the embedded default): claims stored messages (on
  PostgreSQL ``FOR UPDATE SKIP LOCKED``, so several workers never take the same one; SQLite serialises writers),
  leases them and reserves their ticket numbers (one short committed transaction), then turns the batch into tickets
  in one transaction: the messages that are a new ticket each through ``intake.create_tickets`` (multi-row INSERTs
  for the whole batch, then one UPDATE marking them ``done`` with their tickets; a message whose analysis raises has
  written nothing and fails alone), the ones a channel handler takes (or with attachments) one by one in a savepoint
  each, through ``intake.create_ticket``; a message that raises rolls back only its savepoint (and its desk events).
  A worker killed in the middle leaves its claims to expire (``LEASE``); whoever claims them next finds each either
  done (the batch committed) or untouched, so every accepted message becomes exactly one ticket.
- A message whose processing raises is retried with back-off (``retry_delay``) and after ``MAX_ATTEMPTS`` parked
  as ``failed`` with its error; the raw payload stays as it came, and an admin can replay it (``replay``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Session, sessionmaker

from hotline import attachments, intake, metrics
from hotline.auth import channel_actor
from hotline.db import queue_event, transaction
from hotline.errors import Conflict, Invalid, NotFound
from hotline.models import INBOUND_PENDING, InboundMessage, Ticket
from hotline.states import IN_PROGRESS_STATES
from hotline.suggestion import Suggester
from hotline.timing import Timing

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5
ACCEPTED, PROCESSING, DONE, FAILED = "accepted", "processing", "done", "failed"


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message: a photo, a voice message, a call recording."""

    kind: str  # image | audio | recording | document
    url: str | None = None
    media_id: str | None = None
    content_type: str | None = None
    size: int | None = None
    #: True: the hotline downloads it into its attachment store (``hotline.attachments``); False: a public link
    fetch: bool = False


@dataclass(frozen=True)
class Inbound:
    """What a channel adapter hands to the core, whatever its protocol."""

    channel: str
    external_id: str
    text: str
    title: str = ""
    citizen_name: str | None = None
    citizen_phone: str | None = None
    wechat_openid: str | None = None
    place_text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime | None = None
    confidential: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    def intake_request(self) -> intake.IntakeRequest:
        """The request the ticket will be made from; raises ``Invalid`` (422) naming the bad field."""
        citizen = None
        if self.citizen_name or self.citizen_phone or self.wechat_openid:
            citizen = {"name": self.citizen_name, "phone": self.citizen_phone, "wechat_openid": self.wechat_openid}
        try:
            return intake.IntakeRequest.model_validate({
                "channel": self.channel, "external_id": self.external_id, "title": self.title or None,
                "text": self.text, "citizen": citizen, "location": self.place_text,
                "confidential": self.confidential, "received_at": self.received_at,
            })
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or "message"
            raise Invalid(f"{name}: {first['msg']}", field=name) from exc

    def payload(self) -> dict[str, Any]:
        request = self.intake_request().model_dump(mode="json")
        request["attachments"] = [a.__dict__ for a in self.attachments]
        request["coordinates"] = (
            {"latitude": self.latitude, "longitude": self.longitude} if self.latitude is not None else None
        )
        request["raw"] = self.raw
        return request


@dataclass(frozen=True)
class Accepted:
    inbound_id: int
    duplicate: bool


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def accept(
    session: Session, message: Inbound, *, max_text_chars: int = 10_000, now: datetime | None = None
) -> Accepted:
    """Store the message for processing (the caller commits, then acknowledges). A repeat is a duplicate."""
    values = _accept_values(message, max_text_chars, now)
    new_id = session.execute(intake.store_inbound(session.get_bind().dialect.name), values).scalar_one_or_none()
    if new_id is not None:
        return _accepted(message, new_id)
    return _repeated(message, session.scalar(_stored_id(message)))


async def accept_async(
    connection: AsyncConnection, message: Inbound, *, max_text_chars: int = 10_000, now: datetime | None = None
) -> Accepted:
    """``accept`` on the event loop, for the channel webhook path on PostgreSQL: ``connection`` is in autocommit,
    so the INSERT is stored when it returns (one round trip; no trip through the threadpool)."""
    values = _accept_values(message, max_text_chars, now)
    new_id = (await connection.execute(intake.store_inbound("postgresql"), values)).scalar_one_or_none()
    if new_id is not None:
        return _accepted(message, new_id)
    return _repeated(message, (await connection.execute(_stored_id(message))).scalar_one_or_none())


async def accept_on(
    engine: AsyncEngine, message: Inbound, *, max_text_chars: int = 10_000, now: datetime | None = None
) -> Accepted:
    """``accept_async`` on a connection of ``engine`` (``Services.accept_engine``, which does not ping a pooled
    connection before use). A connection the server dropped meanwhile (a restart) fails its first statement, which
    invalidates it and the pool's other connections of before; the accept is then made once more on a fresh one,
    which is safe as the INSERT does nothing for a message already stored. Any other error is the caller's."""
    try:
        async with engine.connect() as connection:
            return await accept_async(connection, message, max_text_chars=max_text_chars, now=now)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("a pooled connection of the accept was gone (%s); accepting on a new one", type(exc.orig).__name__)
    async with engine.connect() as connection:
        return await accept_async(connection, message, max_text_chars=max_text_chars, now=now)


def _accept_values(message: Inbound, max_text_chars: int, now: datetime | None) -> dict[str, Any]:
    if len(message.text) > max_text_chars:
        raise Invalid(f"text is {len(message.text)} characters; the limit is {max_text_chars}", field="text",
                      limit=max_text_chars)
    payload = message.payload()
    now = now or datetime.now(UTC)
    return {"channel": message.channel, "external_id": message.external_id, "payload": payload, "state": ACCEPTED,
            "attempts": 0, "next_attempt_at": now, "received_at": message.received_at or now}


def _stored_id(message: Inbound) -> Any:
    return select(InboundMessage.id).where(
        InboundMessage.channel == message.channel, InboundMessage.external_id == message.external_id)


def _accepted(message: Inbound, new_id: int) -> Accepted:
    metrics.INTAKE.labels(message.channel, "accepted").inc()
    return Accepted(int(new_id), duplicate=False)


def _repeated(message: Inbound, existing: int | None) -> Accepted:
    metrics.INTAKE.labels(message.channel, "replayed").inc()
    assert existing is not None  # the conflict was on this very key
    return Accepted(int(existing), duplicate=True)


def retry_delay(attempts: int) -> timedelta:
    """5 s, 20 s, 80 s, 5 min 20 s …, at most 30 minutes."""
    return timedelta(seconds=min(1800, 5 * 4 ** max(0, attempts - 1)))


def claim(session: Session, now: datetime, limit: int) -> list[int]:
    """Take up to ``limit`` messages due for processing (new ones, retries that are due, expired leases)."""
    due = or_(
        (InboundMessage.state == ACCEPTED) & (InboundMessage.next_attempt_at <= now),
        (InboundMessage.state == PROCESSING) & (InboundMessage.lease_until < now),
    )
    # the state test, implied by ``due``, spelled as the partial index ix_inbound_pending_id says it, literals and
    # all: SQLite uses a partial index only for a WHERE that contains its condition (else it walks every message
    # ever done)
    pick = select(InboundMessage.id).where(text(INBOUND_PENDING), due).order_by(InboundMessage.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list(session.scalars(pick))
    if ids:
        session.execute(
            update(InboundMessage).where(InboundMessage.id.in_(ids))
            .values(state=PROCESSING, lease_until=now + LEASE, attempts=InboundMessage.attempts + 1)
        )
    return ids


@dataclass(frozen=True)
class Context:
    """What a handler needs besides the message: the process's analysis, timing and intake settings, and the ticket
    numbers reserved for the batch."""

    suggester: Suggester
    timing: Timing
    auto_dispatch: bool = True
    max_text_chars: int = 10_000
    now: datetime | None = None
    numbers: intake.NumberBlock | None = None


#: a channel's own handling of one stored message, in its transaction: returns the ticket the message belongs to
#: (a new one, or one it joins — a WeChat photo sent after the text, a phone call's later step), or None when it
#: belongs to none (a call's status callback when the call made no ticket)
Handler = Callable[[Session, InboundMessage, intake.IntakeRequest, Context], Ticket | None]


def new_ticket(session: Session, row: InboundMessage, request: intake.IntakeRequest, ctx: Context) -> Ticket:
    """The default handler: every message is a new ticket."""
    return intake.create_ticket(
        session, request, channel_actor(row.channel), suggester=ctx.suggester, timing=ctx.timing, inbound=row,
        max_text_chars=ctx.max_text_chars, auto_dispatch=ctx.auto_dispatch, now=ctx.now, extra=_extra(row),
        numbers=ctx.numbers,
    )


@dataclass
class ProcessReport:
    created: int = 0
    retried: int = 0
    failed: int = 0

    def __bool__(self) -> bool:
        return bool(self.created or self.retried or self.failed)


def process_pending(
    sessions: sessionmaker[Session], suggester: Suggester, timing: Timing, *, limit: int = 50,
    auto_dispatch: bool = True, max_text_chars: int = 10_000, now: datetime | None = None,
    handlers: Mapping[str, Handler] | None = None,
) -> ProcessReport:
    """One pass: claim a batch (and reserve its ticket numbers), then hand each message to its channel's handler
    (default: a new ticket) in one transaction for the batch, a savepoint per message: a message that raises rolls
    back only itself and is retried or parked. Should the batch's transaction fail as a whole (its commit), each of
    its messages is processed again alone, in a transaction of its own."""
    report = ProcessReport()
    started = now or datetime.now(UTC)
    with transaction(sessions) as session:  # short: the claims and the numbers are committed at once
        ids = claim(session, started, limit)
        if not ids:
            return report
        numbers = intake.reserve_numbers(session, len(ids), started, timing.zone)
    ctx = Context(suggester, timing, auto_dispatch, max_text_chars, now, numbers)
    channels: dict[int, str] = {}
    remembered: list[int] = []
    try:
        with transaction(sessions) as session:
            outcomes = _process_batch(session, ids, ctx, handlers or {}, channels, remembered)
            intake.release_numbers(session, numbers)
    except Exception as exc:
        log.warning("a batch of %d inbound messages failed as a whole (%s); processing them one by one",
                    len(ids), exc, exc_info=True)
        _forget(suggester, remembered)
        numbers.taken = 0  # the batch's tickets were rolled back with it
        outcomes = {inbound_id: _process_alone(sessions, inbound_id, ctx, handlers or {}, channels)
                    for inbound_id in ids}
        with transaction(sessions) as session:
            intake.release_numbers(session, numbers)
    for inbound_id in ids:
        outcome = outcomes[inbound_id]
        setattr(report, outcome, getattr(report, outcome) + 1)
        metrics.INTAKE.labels(channels.get(inbound_id, "unknown"), outcome).inc()
    return report


def _process_alone(sessions: sessionmaker[Session], inbound_id: int, ctx: Context, handlers: Mapping[str, Handler],
                   channels: dict[int, str]) -> str:
    mark = ctx.numbers.taken if ctx.numbers is not None else 0
    remembered: list[int] = []
    try:
        with transaction(sessions) as session:
            return _process_batch(session, [inbound_id], ctx, handlers, channels, remembered)[inbound_id]
    except Exception as exc:
        log.warning("inbound message %s failed: %s", inbound_id, exc, exc_info=True)
        _forget(ctx.suggester, remembered)
        if ctx.numbers is not None:
            ctx.numbers.taken = mark
        with transaction(sessions) as session:
            return "failed" if _record_failure(session, inbound_id, exc, ctx.now or datetime.now(UTC)) else "retried"


def _process_batch(session: Session, ids: list[int], ctx: Context, handlers: Mapping[str, Handler],
                   channels: dict[int, str], remembered: list[int]) -> dict[int, str]:
    """The batch in the caller's transaction: its rows locked in one statement, classified in one model call. The
    messages that are simply a new ticket each (no channel handler, no attachments) are made together by
    ``intake.create_tickets`` and marked done in one statement; the others go one by one, each in a savepoint.
    Returns each message's outcome (created, retried or failed)."""
    stmt = select(InboundMessage).where(InboundMessage.id.in_(ids)).order_by(InboundMessage.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    rows = {row.id: row for row in session.scalars(stmt)}
    channels.update({row.id: row.channel for row in rows.values()})
    ctx.suggester.prepare([(p.get("title") or "", str(p.get("text", "")), p.get("location"))
                           for p in (row.payload for row in rows.values())])
    now = ctx.now or datetime.now(UTC)
    outcomes: dict[int, str] = {}
    together: list[tuple[InboundMessage, intake.NewTicket]] = []
    alone: list[int] = []
    for inbound_id in ids:
        row = rows.get(inbound_id)
        if row is None or row.state != PROCESSING or row.ticket_id is not None:
            outcomes[inbound_id] = "created"  # another worker finished it after our lease expired
        elif row.channel in handlers or row.payload.get("attachments"):
            alone.append(inbound_id)
        else:
            try:
                request = _request(row)
            except ValidationError as exc:
                outcomes[inbound_id] = _failed(session, inbound_id, exc, now)
                continue
            together.append((row, intake.NewTicket(request, channel_actor(row.channel), extra=_extra(row))))
    if together:
        made = intake.create_tickets(
            session, [item for _, item in together], suggester=ctx.suggester, timing=ctx.timing,
            numbers=ctx.numbers, max_text_chars=ctx.max_text_chars, auto_dispatch=ctx.auto_dispatch, now=now,
            remembered=remembered)
        done: list[tuple[int, int]] = []
        for (row, _), result in zip(together, made, strict=True):
            if isinstance(result, Exception):
                outcomes[row.id] = _failed(session, row.id, result, now)
            else:
                done.append((row.id, result))
                outcomes[row.id] = "created"
        intake.mark_done(session, done, now)
    for inbound_id in alone:
        mark = ctx.numbers.taken if ctx.numbers is not None else 0
        ticket: Ticket | None = None
        try:
            with session.begin_nested():
                ticket = _process_one(session, rows[inbound_id], ctx, handlers)
            outcomes[inbound_id] = "created"
        except Exception as exc:
            if ctx.numbers is not None:
                ctx.numbers.taken = mark  # its ticket was rolled back: the next message takes its number
            outcomes[inbound_id] = _failed(session, inbound_id, exc, now)
            continue
        if ticket is not None and ticket.status in IN_PROGRESS_STATES:
            # the next messages of the batch are compared with this one too (a second report of the same lamp); a
            # ticket a message joined is indexed again as it is
            area_code = (ticket.analysis or {}).get("area_code")
            index_notice = ctx.suggester.remember(ticket.id, ticket.title, ticket.text, area_code,
                                                  ticket.received_at, number=ticket.number)
            if index_notice is not None:
                queue_event(session, index_notice)
            remembered.append(ticket.id)
    return outcomes


def _request(row: InboundMessage) -> intake.IntakeRequest:
    return intake.IntakeRequest.model_validate({k: v for k, v in row.payload.items()
                                                if k in intake.IntakeRequest.model_fields})


def _extra(row: InboundMessage) -> dict[str, Any]:
    """What the receive event keeps of the stored message besides the request (attachments, coordinates)."""
    return {k: row.payload.get(k) for k in ("attachments", "coordinates") if row.payload.get(k)}


def _failed(session: Session, inbound_id: int, exc: Exception, now: datetime) -> str:
    log.warning("inbound message %s failed: %s", inbound_id, exc, exc_info=exc)
    return "failed" if _record_failure(session, inbound_id, exc, now) else "retried"


def _forget(suggester: Suggester, ticket_ids: list[int]) -> None:
    """Tickets of a rolled-back transaction leave the duplicate index again."""
    for ticket_id in ticket_ids:
        suggester.forget(ticket_id)


def _process_one(session: Session, row: InboundMessage | None, ctx: Context,
                 handlers: Mapping[str, Handler]) -> Ticket | None:
    """One locked message: its ticket made (or joined) and the message marked done. Returns that ticket."""
    if row is None or row.state != PROCESSING or row.ticket_id is not None:
        return None  # another worker finished it after our lease expired
    request = _request(row)
    ticket = handlers.get(row.channel, new_ticket)(session, row, request, ctx)
    row.ticket_id = row.ticket_id or (ticket.id if ticket is not None else None)
    if ticket is not None:
        attachments.record(session, ticket, row, ctx.now)  # fetched later, outside this transaction
    if row.state != DONE:  # a message that became a new ticket is marked done by ``create_ticket`` already
        row.state, row.lease_until, row.last_error = DONE, None, None
        row.processed_at = ctx.now or datetime.now(UTC)
    return ticket


def _record_failure(session: Session, inbound_id: int, exc: Exception, now: datetime) -> bool:
    """Schedule a retry or park the message; True when it is parked as failed."""
    row = session.get(InboundMessage, inbound_id)
    if row is None or row.state == DONE:
        return False
    row.last_error = f"{type(exc).__name__}: {exc}"[:4000]
    row.lease_until = None
    if row.attempts >= MAX_ATTEMPTS:
        row.state = FAILED
        return True
    row.state, row.next_attempt_at = ACCEPTED, now + retry_delay(row.attempts)
    return False


def replay(session: Session, inbound_id: int, now: datetime | None = None) -> InboundMessage:
    """An admin sends a parked message through processing again (its raw payload unchanged)."""
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound(f"inbound message {inbound_id} not found")
    if row.state != FAILED:
        raise Conflict(f"inbound message {inbound_id} is {row.state}; only failed messages are replayed")
    row.state, row.attempts, row.next_attempt_at, row.lease_until = ACCEPTED, 0, now or datetime.now(UTC), None
    return row
