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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

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
) -> tuple[Ticket, bool]:
    """Turn a message into a ticket. Returns (ticket, created); a repeated (channel, external_id) is not created."""
    if len(request.text) > max_text_chars:
        raise Invalid(
            f"text is {len(request.text)} characters; the limit is {max_text_chars}", field="text", limit=max_text_chars
        )
    if actor.channel is not None and actor.channel != request.channel:
        raise Invalid(f"this key belongs to channel '{actor.channel}', not '{request.channel}'", field="channel")
    now = now or datetime.now(UTC)

    inbound_id: int | None = None
    if request.external_id is not None:
        # one INSERT … ON CONFLICT DO NOTHING: a delivery of the same message running concurrently waits for the
        # first one's commit, then finds its ticket
        inbound_id = _store(session, request, now)
        if inbound_id is None:
            existing = _existing_ticket(session, request.channel, request.external_id)
            if existing is None:
                raise Conflict(
                    f"message {request.channel}/{request.external_id} is stored and waits to become a ticket",
                    zh="这条消息已经收到，正在生成工单，请稍后查看",
                )
            metrics.INTAKE.labels(request.channel, "replayed").inc()
            return existing, False

    ticket = create_ticket(session, request, actor, suggester=suggester, timing=timing,
                           max_text_chars=max_text_chars, auto_dispatch=auto_dispatch, now=now)
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
    numbers: NumberBlock | None = None,
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
        suggester.remember(ticket.id, ticket.title, ticket.text, suggestion.area_code, ticket.received_at,
                           number=ticket.number)
        if remembered is not None:
            remembered.append(ticket.id)
        made.append((len(out), ticket, item, auto_dispatch_input(suggestion, urgent=ticket.urgent,
                                                                 allowed=auto_dispatch)))
        out.append(ticket.id)
    citizens = _citizen_ids(session, [item.request for _, _, item, _ in made])
    for (_, ticket, _, _), citizen_id in zip(made, citizens, strict=True):
        ticket.citizen_id = citizen_id
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
    tickets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    co_units: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []
    columns = set(Ticket.__table__.columns.keys())
    for (position, ticket, _, dispatch), (receive, receive_notice, dispatch_id) in zip(made, receives, strict=True):
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
        # only what was set: a column left out takes its default
        tickets.append({k: v for k, v in vars(ticket).items() if k in columns})
        events.extend(ticket_events)
        notices.extend(ticket_notices)
    for table, rows in ((Ticket.__table__, tickets), (TicketEvent.__table__, events),
                        (TicketCoUnit.__table__, co_units)):
        _insert_rows(session, table, rows)
    for notice in notices:
        queue_event(session, notice)
    return out


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
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(InboundMessage)
        .values(channel=request.channel, external_id=request.external_id, payload=request.model_dump(mode="json"),
                state="processing", attempts=0, received_at=request.received_at or now)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(InboundMessage.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    return int(new_id) if new_id is not None else None


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
