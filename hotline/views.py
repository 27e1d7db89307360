"""How tickets look from outside: what each role may see of them (masking, confidentiality).

Decisions: agents and supervisors see the citizen's full number (they call back and review callbacks);
dispatchers, admins, units and channels see it masked (138****1234), in ``citizen.phone`` and wherever a number
stands in the text: the ticket's title and text, event notes, the conversation (``shown_text``). A confidential
(保密) ticket shows units no citizen at all, and units cannot look tickets up by citizen (``/api/tickets`` refuses
``citizen_id`` from them), so no other ticket of the same caller links the identity. A merged ticket shows a unit
its parent only when that unit may see the parent; a follow-up ticket (关联工单) shows a unit the line its
transferred ticket went to, never that ticket's number (a transferred ticket has no unit, so no unit may see it).

The desk draws its buttons from ``allowed_actions``, computed with the ticket's co-units, so a co-unit's handler
sees the actions open to co-units (备注, 督办回复) and nothing a lead unit alone may do.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hotline import attachments, workflow
from hotline.auth import Actor
from hotline.labels import KIND_LABELS, STATUS_LABELS
from hotline.models import Area, Category, InboundMessage, OutboxMessage, Role, Ticket, TicketEvent, Unit
from hotline.visibility import may_open_attachment, sees_unit_work

FULL_PHONE_ROLES = frozenset({Role.agent, Role.supervisor})


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    if len(phone) <= 7:
        return phone[:2] + "*" * (len(phone) - 2)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


# A mainland mobile (optionally +86), or a landline with its area code (0571-88886666, 010 12345678), standing alone:
# no digit right before or after, so ticket numbers (14 digits) and amounts in longer digit runs are left alone.
# Bare 7-8 digit local numbers are not masked: in citizens' text they are as often house numbers or amounts.
_PHONE_IN_TEXT = re.compile(
    r"(?<![0-9])(?:(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}|0[1-9][0-9]{1,2}[- ]?[2-9][0-9]{6,7})(?![0-9])"
)


def mask_phones_in_text(text: str) -> str:
    """Every phone number inside free text masked like ``mask_phone`` (我电话139****5678)."""

    def masked(match: re.Match[str]) -> str:
        digits = re.sub(r"[^0-9]", "", match.group(0))
        if len(digits) == 13 and digits.startswith("86"):  # +86 mobile: mask the national number
            digits = digits[2:]
        return mask_phone(digits) or ""

    return _PHONE_IN_TEXT.sub(masked, text)


def sees_full_phone(actor: Actor) -> bool:
    return actor.role in FULL_PHONE_ROLES


def shown_text(text: str, actor: Actor) -> str:
    """Free text (title, text, notes, messages) as ``actor`` may read it: numbers masked unless full ones."""
    return text if sees_full_phone(actor) else mask_phones_in_text(text)


class Ref(BaseModel):
    id: int
    code: str
    name: str


class CitizenOut(BaseModel):
    id: int
    name: str | None
    phone: str | None


class EventOut(BaseModel):
    id: int
    type: str
    actor: str
    actor_role: str | None
    from_status: str | None
    to_status: str | None
    note: str
    data: dict[str, Any]
    created_at: datetime


class TicketOut(BaseModel):
    id: int
    number: str
    status: str
    status_label: str
    channel: str
    title: str
    text: str
    location: str | None
    kind: str
    kind_label: str
    urgent: bool
    urgency_reason: str | None
    emergency_line: str | None
    category: Ref | None
    area: Ref | None
    unit: Ref | None
    co_units: list[int]
    parent_id: int | None
    citizen: CitizenOut | None
    confidential: bool
    received_at: datetime
    dispatched_at: datetime | None
    sign_due: datetime | None
    reply_due: datetime | None
    signed_at: datetime | None
    replied_at: datetime | None
    callback_due: datetime | None
    closed_at: datetime | None
    reply_text: str | None
    satisfaction: str | None
    solved: bool | None
    extension_pending: bool
    analysis: dict[str, Any]
    version: int
    allowed_actions: list[str]
    reopen_count: int = 0  # 重办: how many times a supervisor reopened it (the desk marks the ticket with it)
    reopen_reason: str | None = None  # the latest reopen's reason, for the dispatcher and the unit


class ConversationItem(BaseModel):
    """One message between the citizen and the hotline on the ticket's channel: what came in, what went back."""

    direction: str  # in | out
    channel: str
    kind: str  # in: message; out: the outbox kind (accepted, reply, survey …)
    text: str
    at: datetime
    state: str  # in: accepted/processing/done/failed; out: pending/sending/sent/failed
    attempts: int
    recipient: str | None = None
    last_error: str | None = None


class CallbackOut(BaseModel):
    """The latest callback (回访): what the citizen said, shown on the ticket itself, not only in its history."""

    satisfaction: str
    solved: bool
    note: str  # the citizen's words as recorded, masked like every text
    actor: str
    at: datetime


class AttachmentOut(BaseModel):
    """A file that came with the citizen's messages (``hotline.attachments``): ``url`` serves a stored one; a
    public link (``linked``) keeps its address as ``source_url``; a refused one says why in ``reason``."""

    id: int
    kind: str
    state: str  # pending | fetching | stored | refused | linked
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    url: str | None = None
    source_url: str | None = None
    reason: str | None = None
    may_retry: bool = False  # a refused file desk staff may send back to the fetcher
    created_at: datetime


class TicketDetail(TicketOut):
    events: list[EventOut]
    conversation: list[ConversationItem] = []
    last_callback: CallbackOut | None = None
    attachments: list[AttachmentOut] = []


#: who may fetch a refused file again: the hotline's own desk staff, not the units
RETRY_ROLES = frozenset({Role.agent, Role.dispatcher, Role.supervisor, Role.admin})


def ticket_attachments(session: Session, ticket: Ticket, actor: Actor) -> list[AttachmentOut]:
    """The ticket's attachments this actor may open (``visibility.may_open_attachment``), without their bytes."""
    return [AttachmentOut(id=a.id, kind=a.kind, state=a.state, content_type=a.content_type, size=a.size,
                          sha256=a.sha256, reason=a.reason, created_at=a.created_at,
                          may_retry=a.state == attachments.REFUSED and actor.role in RETRY_ROLES,
                          url=f"/api/attachments/{a.id}" if a.state == attachments.STORED else None,
                          source_url=a.source if a.state == attachments.LINKED
                          and a.source.startswith(("https://", "http://")) else None)
            for a in attachments.of_ticket(session, ticket.id) if may_open_attachment(actor, ticket, a.kind)]


def ticket_load_options() -> list[Any]:
    return [
        selectinload(Ticket.category),
        selectinload(Ticket.area),
        selectinload(Ticket.lead_unit),
        selectinload(Ticket.citizen),
        selectinload(Ticket.co_units),
        selectinload(Ticket.parent).selectinload(Ticket.co_units),
    ]


def parent_visible(ticket: Ticket, actor: Actor) -> bool:
    """A unit sees which ticket its own was merged into only when it may see that ticket too."""
    if ticket.parent_id is None or not actor.is_unit:
        return True
    parent = ticket.parent
    return parent is not None and sees_unit_work(actor, parent.lead_unit_id, [c.unit_id for c in parent.co_units])


def _ref(obj: Category | Area | Unit | None) -> Ref | None:
    return None if obj is None else Ref(id=obj.id, code=obj.code, name=obj.name)


def reworks(session: Session, ticket_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Per reopened ticket: how many 重办 events it has and the latest one's reason (one query for a whole list)."""
    if not ticket_ids:
        return {}
    out: dict[int, tuple[int, str]] = {}
    rows = session.execute(
        select(TicketEvent.ticket_id, TicketEvent.note)
        .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.type == "reopen")
        .order_by(TicketEvent.id)
    )
    for ticket_id, note in rows:
        count = out.get(ticket_id, (0, ""))[0]
        out[ticket_id] = (count + 1, note)
    return out


def ticket_out(ticket: Ticket, actor: Actor, rework: tuple[int, str] | None = None) -> TicketOut:
    citizen = None
    if ticket.citizen is not None and not (ticket.confidential and actor.is_unit):
        phone = ticket.citizen.phone if sees_full_phone(actor) else mask_phone(ticket.citizen.phone)
        citizen = CitizenOut(id=ticket.citizen.id, name=ticket.citizen.name, phone=phone)
    co_units = [c.unit_id for c in ticket.co_units]
    analysis = ticket.analysis or {}
    if actor.is_unit:
        # Units see what was decided, not the front desk's guesses about duplicates of other units' tickets.
        analysis = {k: v for k, v in analysis.items() if k not in ("duplicates",)}
    return TicketOut(
        id=ticket.id,
        number=ticket.number,
        status=ticket.status,
        status_label=STATUS_LABELS.get(ticket.status, ticket.status),
        channel=ticket.channel,
        title=shown_text(ticket.title, actor),
        text=shown_text(ticket.text, actor),
        location=ticket.location,
        kind=ticket.kind,
        kind_label=KIND_LABELS.get(ticket.kind, ticket.kind),
        urgent=ticket.urgent,
        urgency_reason=ticket.urgency_reason,
        emergency_line=ticket.emergency_line,
        category=_ref(ticket.category),
        area=_ref(ticket.area),
        unit=_ref(ticket.lead_unit),
        co_units=co_units,
        parent_id=ticket.parent_id if parent_visible(ticket, actor) else None,
        citizen=citizen,
        confidential=ticket.confidential,
        received_at=ticket.received_at,
        dispatched_at=ticket.dispatched_at,
        sign_due=ticket.sign_due,
        reply_due=ticket.reply_due,
        signed_at=ticket.signed_at,
        replied_at=ticket.replied_at,
        callback_due=ticket.callback_due,
        closed_at=ticket.closed_at,
        reply_text=ticket.reply_text,
        satisfaction=ticket.satisfaction,
        solved=ticket.solved,
        extension_pending=ticket.extension_pending,
        analysis=analysis,
        version=ticket.version,
        allowed_actions=workflow.allowed_actions(ticket, actor, co_units),
        reopen_count=rework[0] if rework else 0,
        reopen_reason=rework[1] if rework else None,
    )


def ticket_detail(session: Session, ticket_id: int, actor: Actor) -> TicketDetail:
    ticket = workflow.load_visible(session, ticket_id, actor)
    ticket = session.scalars(
        select(Ticket).where(Ticket.id == ticket.id).options(*ticket_load_options())
    ).one()
    events = list(
        session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))
    )
    reopens = [e.note for e in events if e.type == "reopen"]
    base = ticket_out(ticket, actor, (len(reopens), reopens[-1]) if reopens else None)
    hidden = (_PARENT_KEYS if not parent_visible(ticket, actor) else ()) + (_FOLLOWS_KEYS if actor.is_unit else ())
    callbacks = [e for e in events if e.type == "callback"]
    return TicketDetail(
        **base.model_dump(),
        conversation=conversation(session, ticket, actor),
        last_callback=_callback_out(callbacks[-1], actor) if callbacks else None,
        attachments=ticket_attachments(session, ticket, actor),
        events=[
            EventOut(
                id=e.id,
                type=e.type,
                actor=e.actor_name,
                actor_role=e.actor_role,
                from_status=e.from_status,
                to_status=e.to_status,
                note=shown_text(e.note, actor),
                data={k: v for k, v in e.data.items() if k not in hidden},
                created_at=e.created_at,
            )
            for e in events
        ],
    )


_PARENT_KEYS = ("parent_id", "parent_number")
_FOLLOWS_KEYS = ("follows_id", "follows_number")  # the transferred ticket a follow-up came from


def _callback_out(event: TicketEvent, actor: Actor) -> CallbackOut:
    return CallbackOut(satisfaction=str(event.data.get("satisfaction", "")), solved=bool(event.data.get("solved")),
                       note=shown_text(event.note, actor), actor=event.actor_name, at=event.created_at)


def conversation(session: Session, ticket: Ticket, actor: Actor) -> list[ConversationItem]:
    """The ticket's messages in and out, oldest first, with delivery state. Recipients (phone numbers, openids) are
    masked for roles that get masked numbers and hidden from units on a confidential ticket."""
    items: list[ConversationItem] = []
    for row in session.scalars(select(InboundMessage).where(InboundMessage.ticket_id == ticket.id)):
        items.append(ConversationItem(direction="in", channel=row.channel, kind="message",
                                      text=shown_text(str(row.payload.get("text", "")), actor), at=row.received_at,
                                      state=row.state,
                                      attempts=row.attempts, last_error=row.last_error))
    for out in session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)):
        if ticket.confidential and actor.is_unit:
            recipient = None
        elif sees_full_phone(actor):
            recipient = out.recipient
        else:
            recipient = mask_phone(out.recipient) if out.recipient.isdigit() else "（已隐藏）"
        items.append(ConversationItem(direction="out", channel=out.channel, kind=out.kind,
                                      text=shown_text(str(out.payload.get("body") or out.payload.get("text") or ""),
                                                      actor),
                                      at=out.sent_at or out.created_at, state=out.state, attempts=out.attempts,
                                      recipient=recipient, last_error=out.last_error))
    return sorted(items, key=lambda item: item.at)
