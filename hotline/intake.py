"""The one intake point: every channel turns a message into a ticket through ``submit``.

``submit`` is the synchronous path (an agent on the phone needs the ticket at once): store the raw message under
UNIQUE(channel, external_id) with one ``INSERT … ON CONFLICT DO NOTHING`` so a retried delivery returns the same
ticket, then ``create_ticket``. Channel webhooks
take the durable path instead (``hotline.inbound``: accept now, the worker calls ``create_ticket`` later).
``create_ticket``, in the caller's transaction: analyse the text (category, kind, urgency, place, duplicates,
knowledge); pick the unit from the dispatch catalogue; create the ticket and its first event; auto-dispatch when the
classifier is confident, the case is not urgent and the catalogue names a unit.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import Table, bindparam, delete, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hotline import metrics, views, workflow
from hotline.auth import SYSTEM, Actor
from hotline.db import queue_event
from hotline.errors import Conflict, Invalid
from hotline.fields import Moment, NoNul
from hotline.models import (
    Citizen,
    InboundMessage,
    Kind,
    Role,
    Status,
    Ticket,
    TicketCoUnit,
    TicketEvent,
    TicketSequence,
)
from hotline.settings import CHANNELS
from hotline.suggestion import Suggester, Suggestion
from hotline.timing import Timing
from nlp.segment import default_segmenter

TITLE_LENGTH = 30
_CLAUSE_END = re.compile(r"[，。！？；,.!?;\n]")


def auto_title(text: str, limit: int = TITLE_LENGTH) -> str:
    """A title from the request itself when none was given: its first clause if that fits, else as many whole
    words as fit (never a word cut in the middle: 金桂园小 of 金桂园小区)."""
    text = text.strip()
    first = _CLAUSE_END.split(text, maxsplit=1)[0].strip()
    if 4 <= len(first) <= limit:
        return first
    title = ""
    for word in default_segmenter().cut(first or text):
        if len(title) + len(word) > limit:
            break
        title += word
    if not title:  # one word longer than the limit: cut it, but never through a run of digits (a phone number cut
        title = text[:limit]  # in half would escape masking in the title, hotline.views)
        if len(text) > limit and text[limit].isdigit():
            title = title.rstrip("0123456789") or title
    return title

_PHONE = re.compile(r"^\+?[0-9][0-9\- ]{4,30}$")
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), NoNul]
ChannelName = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True), NoNul]


class IntakeCitizen(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), NoNul] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), NoNul] | None = None
    wechat_openid: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128), NoNul] | None = None

    @field_validator("phone")
    @classmethod
    def _phone_digits(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _PHONE.match(value):
            raise ValueError("phone must be digits (optionally +, - or spaces), e.g. 13800001234")
        return value.replace(" ", "").replace("-", "")


class IntakeRequest(BaseModel):
    """What a channel hands in. ``text`` is limited by the settings (default 10,000 characters)."""

    model_config = ConfigDict(extra="forbid")
    channel: ChannelName
    external_id: ExternalId | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), NoNul] | None = None
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), NoNul]
    citizen: IntakeCitizen | None = None
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), NoNul] | None = None
    confidential: bool = False
    kind: Kind | None = None
    received_at: Moment | None = Field(default=None, description="when the channel received it (defaults to now)")

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel '{value}'; channels are {', '.join(CHANNELS)}")
        return value



def submit(
    session: Session,
    request: IntakeRequest,
    actor: Actor,
    *,
    suggester: Suggester,
    timing: Timing,
    max_text_chars: int = 10_000,
    auto_dispatch: bool = True,
    now: datetime | None = None,
    numbers: NumberPool | None = None,
) -> tuple[Ticket, bool]:
    """Turn a message into a ticket. Returns (ticket, created); a repeated (channel, external_id) is not created.
    ``numbers``: the process's pool of ticket numbers (PostgreSQL), else the number is drawn in this transaction."""
    check_request(request, actor, max_text_chars)
    now = now or datetime.now(UTC)

    inbound_id: int | None = None
    if request.external_id is not None:
        # one INSERT … ON CONFLICT DO NOTHING: a delivery of the same message running concurrently waits for the
        # first one's commit, then finds its ticket
        inbound_id = _store(session, request, now)
        if inbound_id is None:
            existing = _existing_ticket(session, request.channel, request.external_id)
            if existing is None:
                raise waiting_for_worker(request)
            metrics.INTAKE.labels(request.channel, "replayed").inc()
            return existing, False

    block = numbers.take(now, timing.zone) if numbers is not None else None
    ticket = create_ticket(session, request, actor, suggester=suggester, timing=timing,
                           max_text_chars=max_text_chars, auto_dispatch=auto_dispatch, now=now, numbers=block)
    if inbound_id is not None:
        session.execute(update(InboundMessage).where(InboundMessage.id == inbound_id)
                        .values(ticket_id=ticket.id, state="done", processed_at=now))
    metrics.INTAKE.labels(request.channel, "created").inc()
    return ticket, True


def create_ticket(
    session: Session,
    request: IntakeRequest,
    actor: Actor,
    *,
    suggester: Suggester,
    timing: Timing,
    inbound: InboundMessage | None = None,
    max_text_chars: int = 10_000,
    auto_dispatch: bool = True,
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
    citizen_id: int | None = None,
    numbers: NumberBlock | None = None,
) -> Ticket:
    """Analyse, route and create the ticket with its ``receive`` event (and auto-dispatch when allowed).

    Shared by the agents' synchronous intake (``submit``), the worker's processing of accepted channel messages
    (``hotline.inbound``) and follow-up tickets (``follow_up_maker``); ``extra`` (attachments, coordinates, the
    ticket followed up) is kept on the receive event. ``citizen_id``: a citizen already known (a follow-up is for
    the same citizen), else the request's citizen is looked up or recorded. ``numbers``: the block the worker
    reserved for its batch (``reserve_numbers``), else the number is drawn alone.
    """
    check_length(request, max_text_chars)
    now = now or datetime.now(UTC)
    suggestion = suggester.suggest(session, request.title or "", request.text, request.location, now)
    number = numbers.take(session, now, timing.zone) if numbers is not None else next_number(session, now, timing.zone)
    ticket = Ticket(**ticket_values(
        request, suggestion, actor, number=number, now=now,
        citizen_id=citizen_id if citizen_id is not None else _citizen_id(session, request),
    ))
    session.add(ticket)
    session.flush()
    if inbound is not None:  # the message it was made of is done, written in one UPDATE with the ticket it names
        inbound.ticket_id, inbound.state, inbound.processed_at = ticket.id, "done", now
        inbound.lease_until, inbound.last_error = None, None
    workflow.record_event(session, ticket, "receive", actor, to_status=Status.received, note="",
                          data=receive_data(request, ticket.urgent, extra), now=now)
    dispatch = auto_dispatch_input(suggestion, urgent=ticket.urgent, allowed=auto_dispatch)
    if dispatch is not None:
        workflow.perform(session, ticket.id, "dispatch", SYSTEM, dispatch, timing, now=now)
    return ticket


def check_length(request: IntakeRequest, max_text_chars: int) -> None:
    """A text over the settings' limit is refused (422)."""
    if len(request.text) > max_text_chars:
        raise Invalid(
            f"text is {len(request.text)} characters; the limit is {max_text_chars}", field="text", limit=max_text_chars
        )


def check_request(request: IntakeRequest, actor: Actor, max_text_chars: int) -> None:
    """What a synchronous intake refuses before it stores anything (422): a text over the limit, a channel's key
    submitting for another channel."""
    check_length(request, max_text_chars)
    if actor.channel is not None and actor.channel != request.channel:
        raise Invalid(f"this key belongs to channel '{actor.channel}', not '{request.channel}'", field="channel")


def waiting_for_worker(request: IntakeRequest) -> Conflict:
    """The answer to a synchronous intake of a message that is stored but not a ticket yet (the worker's)."""
    return Conflict(f"message {request.channel}/{request.external_id} is stored and waits to become a ticket",
                    zh="这条消息已经收到，正在生成工单，请稍后查看")


def ticket_values(request: IntakeRequest, suggestion: Suggestion, actor: Actor, *, number: str,
                  citizen_id: int | None, now: datetime) -> dict[str, Any]:
    """A new ticket's columns from the request and its analysis: the one home of these rules, for ``create_ticket``
    and the worker's batch (``create_tickets``)."""
    return {
        "number": number,
        "channel": request.channel,
        "title": request.title or auto_title(request.text),
        "text": request.text,
        "location": request.location or suggestion.place,
        "kind": request.kind or suggestion.kind or Kind.help,
        "urgent": suggestion.urgent,
        "urgency_reason": suggestion.urgency_reason,
        "emergency_line": suggestion.emergency_line,
        "status": Status.received,
        "category_id": suggestion.category_id,
        "area_id": suggestion.area_id,
        "citizen_id": citizen_id,
        "confidential": request.confidential,
        "owner_id": actor.user_id if actor.role in (Role.agent, Role.dispatcher) else None,
        "analysis": suggestion.to_json(),
        "received_at": request.received_at or now,
    }


def receive_data(request: IntakeRequest, urgent: bool, extra: dict[str, Any] | None) -> dict[str, Any]:
    """What the ``receive`` event keeps: the channel's message id, urgency and the caller's ``extra``."""
    return {"channel": request.channel, "external_id": request.external_id, "urgent": urgent, **(extra or {})}


def auto_dispatch_input(suggestion: Suggestion, *, urgent: bool, allowed: bool) -> workflow.DispatchInput | None:
    """The system's dispatch of a new ticket, when the setting allows it, the classifier was confident, the case is
    not urgent and the catalogue names a unit; else None (a person dispatches)."""
    if not (allowed and suggestion.auto_dispatch and suggestion.unit_id is not None and not urgent):
        return None
    return workflow.DispatchInput(unit_id=suggestion.unit_id, co_unit_ids=suggestion.co_unit_ids,
                                  note=f"自动派单：{suggestion.route_explanation}")


@dataclass(frozen=True)
class NewTicket:
    """One message of the worker's batch that is to become a ticket (``create_tickets``)."""

    request: IntakeRequest
    actor: Actor
    extra: dict[str, Any] | None = None


def create_tickets(
    session: Session,
    items: Sequence[NewTicket],
    *,
    suggester: Suggester,
    timing: Timing,
    numbers: NumberBlock | NumberBlocks | None = None,
    max_text_chars: int = 10_000,
    auto_dispatch: bool = True,
    now: datetime | None = None,
    remembered: list[int] | None = None,
) -> list[int | Exception]:
    """``create_ticket`` for a whole batch (the worker's), with the same rules (``ticket_values``, ``receive_data``,
    ``auto_dispatch_input``, ``workflow.dispatch_arrivals``) and a handful of statements for the batch: the ticket
    and event ids reserved in one statement each, the tickets, their events and co-units each in one multi-row
    INSERT; the desk events queued for after the commit as ``record_event`` does.

    Returns, per item, its ticket's id or the exception that stopped it (its analysis raised, its text is too long,
    its unit is refused): that message alone is retried or parked by the caller; nothing of it was written. Each
    ticket joins the suggester's duplicate index as soon as it is analysed (the next message of the batch is
    compared with it) and its id is appended to ``remembered`` (forgotten by the caller if the batch rolls back).
    """
    now = now or datetime.now(UTC)
    out: list[int | Exception] = []
    ids = iter(reserve_ids(session, Ticket, len(items)))
    made: list[tuple[int, Ticket, NewTicket, workflow.DispatchInput | None]] = []
    index_notices: dict[int, dict[str, Any]] = {}  # the other processes' duplicate indexes hear of a ticket kept
    for item in items:
        request = item.request
        try:
            check_length(request, max_text_chars)
            suggestion = suggester.suggest(session, request.title or "", request.text, request.location, now)
        except SQLAlchemyError:
            raise  # the transaction is broken: the caller processes the batch's messages one by one
        except Exception as exc:
            out.append(exc)
            continue
        number = numbers.take(session, now, timing.zone) if numbers is not None else next_number(session, now,
                                                                                                  timing.zone)
        ticket = Ticket(id=next(ids), **ticket_values(request, suggestion, item.actor, number=number,
                                                      citizen_id=None, now=now))
        index_notice = suggester.remember(ticket.id, ticket.title, ticket.text, suggestion.area_code,
                                          ticket.received_at, number=ticket.number)
        if index_notice is not None:
            index_notices[ticket.id] = index_notice
        if remembered is not None:
            remembered.append(ticket.id)
        made.append((len(out), ticket, item, auto_dispatch_input(suggestion, urgent=ticket.urgent,
                                                                 allowed=auto_dispatch)))
        out.append(ticket.id)
    event_ids = iter(reserve_ids(session, TicketEvent, len(made) + sum(d is not None for *_, d in made)))
    receives: list[tuple[dict[str, Any], dict[str, Any], int | None]] = []
    for _, ticket, item, dispatch in made:  # ids in the order the desks hear of the events: receive, dispatch
        receive = {"id": next(event_ids), **workflow.event_values(
            ticket.id, "receive", item.actor, to_status=Status.received,
            data=receive_data(item.request, ticket.urgent, item.extra), now=now)}
        dispatch_id = next(event_ids) if dispatch is not None else None
        # the desk hears of the receive as it was: before the dispatch
        receives.append((receive, workflow.event_notice(TicketEvent(**receive), ticket, [], status=ticket.status),
                         dispatch_id))
    outcome = iter(workflow.dispatch_arrivals(session, [(t, d) for _, t, _, d in made if d is not None], timing,
                                              now))
    kept: list[tuple[Ticket, NewTicket]] = []
    events: list[dict[str, Any]] = []
    co_units: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []
    for (position, ticket, item, dispatch), (receive, receive_notice, dispatch_id) in zip(made, receives,
                                                                                          strict=True):
        ticket_events, ticket_notices = [receive], [receive_notice]
        if dispatch is not None:
            data = next(outcome)
            if isinstance(data, Exception):
                out[position] = data
                suggester.forget(ticket.id)
                continue
            event = {"id": dispatch_id, **workflow.event_values(
                ticket.id, "dispatch", SYSTEM, from_status=Status.received, to_status=ticket.status,
                note=dispatch.note, data=data, now=now)}
            co_unit_ids = [c.unit_id for c in ticket.co_units]
            co_units.extend({"ticket_id": ticket.id, "unit_id": uid} for uid in co_unit_ids)
            ticket_notices.append(workflow.event_notice(TicketEvent(**event), ticket, co_unit_ids,
                                                        status=ticket.status))
            ticket_events.append(event)
        kept.append((ticket, item))
        events.extend(ticket_events)
        if ticket.id in index_notices:  # just before its receive: a process that hears both indexes it once
            notices.append(index_notices[ticket.id])
        notices.extend(ticket_notices)
    # the citizens last: a ticket refused at its dispatch records no citizen either
    citizens = _citizen_ids(session, [item.request for _, item in kept])
    columns = set(Ticket.__table__.columns.keys())
    tickets: list[dict[str, Any]] = []
    for (ticket, _), citizen_id in zip(kept, citizens, strict=True):
        ticket.citizen_id = citizen_id
        # only what was set: a column left out takes its default
        tickets.append({k: v for k, v in vars(ticket).items() if k in columns})
    for table, rows in ((Ticket.__table__, tickets), (TicketEvent.__table__, events),
                        (TicketCoUnit.__table__, co_units)):
        _insert_rows(session, table, rows)
    for notice in notices:
        queue_event(session, notice)
    return out


@dataclass(frozen=True)
class Submitted:
    """What ``submit_many`` made of one request: its ticket, and whether it was made now (False: a repeated
    (channel, external_id) answered with the ticket its first delivery made)."""

    ticket_id: int
    created: bool


def submit_many(
    session: Session,
    items: Sequence[NewTicket],
    *,
    suggester: Suggester,
    timing: Timing,
    max_text_chars: int = 10_000,
    auto_dispatch: bool = True,
    now: datetime | None = None,
    numbers: NumberPool | None = None,
    remembered: list[int] | None = None,
) -> list[Submitted | Exception | None]:
    """``submit`` for a batch of concurrent synchronous intakes, in the caller's one transaction (the group commit
    of ``hotline.intake_batch``), with ``submit``'s rules (``check_request``, ``store_inbound``,
    ``waiting_for_worker``) and the worker's batch for the tickets (``create_tickets``): the batch's messages stored
    with one statement, the ones stored before looked up with one, the new tickets made together, their messages
    marked done with one UPDATE.

    Per item: ``Submitted``; or the exception that refused it alone (its text, its key's channel, its analysis,
    its unit; nothing of it is written, the rest of the batch is); or None: it repeats, within this batch, a
    message whose first delivery here was refused, and is to be submitted again after this batch commits (as a
    concurrent repeat waits for the first delivery's transaction today). A database error is raised: the
    caller's transaction is broken. The caller counts the intakes once committed (``metrics.INTAKE``).
    """
    now = now or datetime.now(UTC)
    out: list[Submitted | Exception | None] = [None] * len(items)
    firsts: dict[tuple[str, str], int] = {}
    repeats: list[tuple[int, tuple[str, str]]] = []
    new: list[int] = []
    for i, item in enumerate(items):
        try:
            check_request(item.request, item.actor, max_text_chars)
        except Invalid as exc:
            out[i] = exc
            continue
        if item.request.external_id is None:
            new.append(i)
        elif (key := (item.request.channel, item.request.external_id)) in firsts:
            repeats.append((i, key))
        else:
            firsts[key] = i
    stored = _store_many(session, [items[i].request for i in firsts.values()], now)
    known = _existing_tickets(session, [key for key in firsts if key not in stored])
    for key, i in firsts.items():
        if key in stored:
            new.append(i)
        elif key in known:
            ticket_id = known[key]
            out[i] = Submitted(ticket_id, created=False) if ticket_id is not None else waiting_for_worker(
                items[i].request)
        # else: the row that conflicted is gone again (its batch refused it): None, submitted again
    new.sort()
    block: NumberBlock | NumberBlocks | None = None
    if new:
        block = numbers.take_many(now, timing.zone, len(new)) if numbers is not None else None
        # SQLite (no pool): reserved in this transaction, which holds the database's write lock anyway
        own = reserve_numbers(session, len(new), now, timing.zone) if block is None else None
        suggester.prepare([(items[i].request.title or "", items[i].request.text, items[i].request.location)
                           for i in new])
        made = create_tickets(session, [items[i] for i in new], suggester=suggester, timing=timing,
                              numbers=block or own, max_text_chars=max_text_chars, auto_dispatch=auto_dispatch,
                              now=now, remembered=remembered)
        if own is not None:
            release_numbers(session, own)
        done: list[tuple[int, int]] = []
        refused: list[int] = []
        for i, result in zip(new, made, strict=True):
            request = items[i].request
            inbound_id = stored.get((request.channel, request.external_id)) if request.external_id else None
            if isinstance(result, Exception):
                out[i] = result
                if inbound_id is not None:
                    refused.append(inbound_id)
            else:
                out[i] = Submitted(result, created=True)
                if inbound_id is not None:
                    done.append((inbound_id, result))
        if refused:  # a refused request writes nothing: its message is not kept either
            session.execute(delete(InboundMessage).where(InboundMessage.id.in_(refused)))
        mark_done(session, done, now)
    for i, key in repeats:
        first = out[firsts[key]]
        if isinstance(first, Submitted):
            out[i] = Submitted(first.ticket_id, created=False)
        elif isinstance(first, Conflict):
            out[i] = waiting_for_worker(items[i].request)
    return out


def mark_done(session: Session, done: Sequence[tuple[int, int]], now: datetime) -> None:
    """Stored messages become done with their tickets, (message id, ticket id) each, in one UPDATE."""
    if not done:
        return
    table = cast(Table, InboundMessage.__table__)
    session.execute(
        update(table).where(table.c.id == bindparam("b_id"))
        .values(ticket_id=bindparam("b_ticket"), state="done", processed_at=now, lease_until=None, last_error=None),
        [{"b_id": inbound_id, "b_ticket": ticket_id} for inbound_id, ticket_id in done],
    )


def _store_many(session: Session, requests: Sequence[IntakeRequest], now: datetime) -> dict[tuple[str, str], int]:
    """``_store`` for several messages with one statement; returns the ids of the ones stored now, by (channel,
    external_id). Sorted by key: two batches storing the same messages take their locks in one order (no
    deadlock)."""
    if not requests:
        return {}
    rows = sorted(({"channel": r.channel, "external_id": r.external_id, "payload": r.model_dump(mode="json"),
                    "state": "processing", "attempts": 0, "received_at": r.received_at or now} for r in requests),
                  key=lambda row: (row["channel"], row["external_id"]))
    result = session.execute(store_inbound(session.get_bind().dialect.name), rows)
    return {(row.channel, row.external_id): int(row.id) for row in result}


def _existing_tickets(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int | None]:
    """The stored messages of ``keys`` with their tickets (None: not a ticket yet), in one SELECT."""
    if not keys:
        return {}
    rows = session.execute(select(InboundMessage.channel, InboundMessage.external_id, InboundMessage.ticket_id)
                           .where(tuple_(InboundMessage.channel, InboundMessage.external_id).in_(keys)))
    return {(row.channel, row.external_id): row.ticket_id for row in rows}


def reserve_ids(session: Session, model: type[Ticket] | type[TicketEvent], n: int) -> list[int]:
    """``n`` new primary keys of ``model``'s table in one statement: drawn from its sequence on PostgreSQL; on SQLite
    the ones after the largest (the transaction holds the database's write lock from its BEGIN IMMEDIATE, and the
    rows are inserted before anything else of the transaction inserts into that table)."""
    if n <= 0:
        return []
    table = model.__tablename__
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table, "n": n},
        )
        return [int(r[0]) for r in rows]
    last = int(session.scalar(select(func.coalesce(func.max(model.id), 0))) or 0)
    return list(range(last + 1, last + 1 + n))


def _insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Multi-row INSERTs of ``rows``: one per set of columns given (a column left out takes its default)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for group in groups.values():
        session.execute(table.insert(), group)


def follow_up_maker(
    *, suggester: Suggester, timing: Timing, max_text_chars: int = 10_000, auto_dispatch: bool = True
) -> workflow.FollowUpMaker:
    """How ``workflow``'s ``follow_up`` (关联工单) makes its ticket: ``create_ticket``, the normal intake, on the
    transferred ticket's channel for the same citizen, as confidential as it was, its receive event naming the
    transferred ticket and the line it went to."""

    def make(session: Session, source: Ticket, data: workflow.FollowUpInput, actor: Actor, now: datetime) -> Ticket:
        # A dispatcher reads the pre-filled text with the numbers masked; sent back unchanged, it is the original.
        text = source.text if data.text == views.shown_text(source.text, actor) else data.text
        request = IntakeRequest(channel=source.channel, text=text, location=data.location or source.location,
                                confidential=source.confidential)
        follows = {"follows_id": source.id, "follows_number": source.number, "follows_line": source.emergency_line}
        return create_ticket(session, request, actor, suggester=suggester, timing=timing,
                             max_text_chars=max_text_chars, auto_dispatch=auto_dispatch, now=now, extra=follows,
                             citizen_id=source.citizen_id)

    return make


def _store(session: Session, request: IntakeRequest, now: datetime) -> int | None:
    """Store the message under UNIQUE(channel, external_id); None when it is there already."""
    new_id = session.execute(store_inbound(session.get_bind().dialect.name), {
        "channel": request.channel, "external_id": request.external_id, "payload": request.model_dump(mode="json"),
        "state": "processing", "attempts": 0, "received_at": request.received_at or now,
    }).scalar_one_or_none()
    return int(new_id) if new_id is not None else None


@functools.cache
def store_inbound(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (channel, external_id) DO NOTHING RETURNING id, channel, external_id`` of a raw
    message (``_store``, ``submit_many`` for a whole batch, ``inbound.accept``), built once: the values come with
    each execution, so every intake reuses the compiled statement (building the ORM insert with its values took
    more of an accept's CPU than anything else)."""
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = InboundMessage.__table__
    return (insert(table).on_conflict_do_nothing(index_elements=["channel", "external_id"])
            .returning(table.c.id, table.c.channel, table.c.external_id))


def _existing_ticket(session: Session, channel: str, external_id: str) -> Ticket | None:
    return session.scalar(
        select(Ticket)
        .join(InboundMessage, InboundMessage.ticket_id == Ticket.id)
        .where(InboundMessage.channel == channel, InboundMessage.external_id == external_id)
    )


def _citizen_id(session: Session, request: IntakeRequest) -> int | None:
    """Find the caller by phone or WeChat openid (for the screen-pop of their history), or record them."""
    return _citizen_ids(session, [request])[0]


def _citizen_ids(session: Session, requests: Sequence[IntakeRequest]) -> list[int | None]:
    """``_citizen_id`` for several requests with one SELECT (and one INSERT for the new ones): a citizen is found by
    phone first, then by openid, the oldest record first; one not known is recorded, once for the whole batch."""
    phones = {r.citizen.phone for r in requests if r.citizen is not None and r.citizen.phone}
    openids = {r.citizen.wechat_openid for r in requests if r.citizen is not None and r.citizen.wechat_openid}
    by_phone: dict[str, Citizen] = {}
    by_openid: dict[str, Citizen] = {}
    if phones or openids:
        for known in session.scalars(select(Citizen).where(or_(Citizen.phone.in_(phones),
                                                              Citizen.wechat_openid.in_(openids)))
                                     .order_by(Citizen.id)):
            if known.phone:
                by_phone.setdefault(known.phone, known)
            if known.wechat_openid:
                by_openid.setdefault(known.wechat_openid, known)
    found: list[Citizen | None] = []
    for request in requests:
        c = request.citizen
        if c is None or not (c.phone or c.wechat_openid or c.name):
            found.append(None)
            continue
        citizen = by_phone.get(c.phone) if c.phone else None
        if citizen is None and c.wechat_openid:
            citizen = by_openid.get(c.wechat_openid)
        if citizen is None:
            citizen = Citizen(name=c.name, phone=c.phone, wechat_openid=c.wechat_openid)
            session.add(citizen)
        else:
            citizen.name = c.name or citizen.name
            citizen.wechat_openid = c.wechat_openid or citizen.wechat_openid
            citizen.phone = c.phone or citizen.phone
        if citizen.phone:
            by_phone.setdefault(citizen.phone, citizen)
        if citizen.wechat_openid:
            by_openid.setdefault(citizen.wechat_openid, citizen)
        found.append(citizen)
    if any(citizen is not None and citizen.id is None for citizen in found):
        session.flush()
    return [citizen.id if citizen is not None else None for citizen in found]


def _day(now: datetime, zone: tzinfo) -> str:
    return now.astimezone(zone).strftime("%Y%m%d")


def _advance(session: Session, day: str, n: int) -> int:
    """Move the day's sequence on by ``n`` in one atomic upsert; returns its new last value."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(TicketSequence)
        .values(day=day, last=n)
        .on_conflict_do_update(index_elements=[TicketSequence.day], set_={"last": TicketSequence.last + n})
        .returning(TicketSequence.last)
    )
    return int(session.execute(stmt).scalar_one())


def next_number(session: Session, now: datetime, zone: tzinfo) -> str:
    """Date (city time) + 6-digit daily sequence, e.g. 20261122000123; an atomic upsert keeps it unique."""
    day = _day(now, zone)
    return f"{day}{_advance(session, day, 1):06d}"


@dataclass
class NumberBlock:
    """Ticket numbers reserved at once for a batch: ``first`` … ``last`` of ``day``, handed out in order."""

    day: str
    first: int
    last: int
    taken: int = 0

    @property
    def unused(self) -> int:
        return self.last - self.first + 1 - self.taken

    def take(self, session: Session, now: datetime, zone: tzinfo) -> str:
        """The next reserved number; one drawn alone when the block is used up or the city's day has changed."""
        if self.unused <= 0 or _day(now, zone) != self.day:
            return next_number(session, now, zone)
        self.taken += 1
        return f"{self.day}{self.first + self.taken - 1:06d}"


@dataclass
class NumberBlocks:
    """Numbers a batch of synchronous intakes took from the process's pool (``NumberPool.take_many``): the pool's
    block may end inside the batch, so they come as one or two blocks, used in order (as ``NumberBlock.take``)."""

    blocks: list[NumberBlock]

    def take(self, session: Session, now: datetime, zone: tzinfo) -> str:
        for block in self.blocks:
            if block.unused > 0:
                return block.take(session, now, zone)
        return next_number(session, now, zone)


def reserve_numbers(session: Session, n: int, now: datetime, zone: tzinfo) -> NumberBlock:
    """Reserve ``n`` numbers of today with one statement (commit it at once: the sequence row stays locked until
    then); ``release_numbers`` gives back the ones a batch did not use."""
    day = _day(now, zone)
    last = _advance(session, day, n)
    return NumberBlock(day=day, first=last - n + 1, last=last)


def release_numbers(session: Session, block: NumberBlock) -> bool:
    """Give back the block's unused numbers (always its tail), if nobody has drawn a number after it meanwhile;
    otherwise they stay unused (a gap in the day's numbers, never a number given twice). True when given back."""
    unused = block.unused
    if unused <= 0:
        return True
    given_back = session.execute(
        update(TicketSequence)
        .where(TicketSequence.day == block.day, TicketSequence.last == block.last)
        .values(last=TicketSequence.last - unused)
        .returning(TicketSequence.last)
    ).scalar_one_or_none()
    if given_back is not None:
        block.last -= unused
    return given_back is not None


class NumberPool:
    """This process's block of ticket numbers for the agents' synchronous intake (``submit``).

    Drawing a number moves the day's ``ticket_sequences`` row on and holds that row's lock until commit; drawn in
    the request's own transaction, every concurrent synchronous intake waited there for the one before it to finish
    its analysis, ticket, event and auto-dispatch. The pool reserves ``size`` numbers at a time in a transaction of
    its own, committed at once, and hands them out under a thread lock: numbers stay unique, but they are no longer
    in receipt order across processes, and the block a process holds when it stops leaves a gap unless ``close``
    could give it back (docs/DESIGN.md "Ticket numbers").

    Only for PostgreSQL: on SQLite the request's transaction already holds the database's one write lock
    (``BEGIN IMMEDIATE``), so a second transaction would wait for it; there ``take`` returns None and the number
    is drawn in the request's transaction as before (one writer at a time anyway).
    """

    def __init__(self, sessions: sessionmaker[Session], size: int = 32) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self._on_sqlite = bind is not None and bind.dialect.name == "sqlite"
        self._size = size
        self._lock = threading.Lock()
        self._block: NumberBlock | None = None

    def take(self, now: datetime, zone: tzinfo) -> NumberBlock | None:
        """A block of the one next number (for ``create_ticket``'s ``numbers``), None on SQLite."""
        if self._on_sqlite:
            return None
        with self._lock:
            block = self._block
            if block is None or block.unused <= 0 or _day(now, zone) != block.day:
                with self._sessions() as session:
                    block = self._block = reserve_numbers(session, self._size, now, zone)
                    session.commit()
            block.taken += 1
            number = block.first + block.taken - 1
            return NumberBlock(day=block.day, first=number, last=number)

    def take_many(self, now: datetime, zone: tzinfo, n: int) -> NumberBlocks | None:
        """``n`` numbers for a batch of synchronous intakes (``submit_many``), None on SQLite: the rest of the
        current block, then a new block of at least ``n``."""
        if self._on_sqlite:
            return None
        blocks: list[NumberBlock] = []
        with self._lock:
            while n > 0:
                block = self._block
                if block is None or block.unused <= 0 or _day(now, zone) != block.day:
                    with self._sessions() as session:
                        block = self._block = reserve_numbers(session, max(self._size, n), now, zone)
                        session.commit()
                given = min(n, block.unused)
                first = block.first + block.taken
                block.taken += given
                blocks.append(NumberBlock(day=block.day, first=first, last=first + given - 1))
                n -= given
        return NumberBlocks(blocks)

    def close(self) -> None:
        """Give back the numbers not handed out, if nobody has drawn after them (else they stay a gap)."""
        with self._lock:
            if self._block is not None and self._block.unused > 0:
                with self._sessions() as session:
                    release_numbers(session, self._block)
                    session.commit()
            self._block = None
