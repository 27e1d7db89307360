"""The hotline behind the Open311 router: services from the category tree, requests from tickets, POSTs through
the one intake point (``hotline.inbound.accept``), all over the database.

What the public sees, and what it never sees:

- Services are the active leaves of the category tree (``Category`` rows without active children); the code is the
  category's code, the group its top-level category, the description its path (城市管理 / 占道经营).
- A request is a ticket, its ``service_request_id`` the ticket number. ``status`` is ``closed`` once the reply
  clock has stopped (``hotline.states.STOPPED_STATES``: replied, answered, called back, closed, merged, transferred)
  and ``open`` otherwise; ``status_notes`` is the unit's public reply (the note of the latest ``reply`` event);
  ``agency_responsible`` the lead unit's name; ``expected_datetime`` the reply deadline (``reply_due``).
- Confidential tickets (``Ticket.confidential``) are not found: 404 by id, left out of lists, and a token of one
  shows no request id. Nothing of the citizen is rendered: no name, phone, email, device or account; the
  description has every run of seven or more digits (phone numbers, ID numbers) masked; the address is the
  ticket's area (district, street), never the place text the citizen gave, and no coordinates.
- ``POST requests`` is accepted (stored, acknowledged) and answers a token; the worker makes the ticket later. The
  external id is ``<client>:<token>``, so ``tokens/{token}`` looks the token up under each configured client's
  name (a client removed from ``HOTLINE_OPEN311_KEYS`` takes its tokens with it). A request whose ticket the
  classifier left without a category gets the service the citizen chose (``recategorize`` by the system).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from channels.open311.georeport import (
    MAX_RESULTS,
    NewServiceRequest,
    Open311Failure,
    Receipt,
    RequestQuery,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
)
from channels.open311.routes import Open311Backend, open311_router
from channels.open311.settings import Open311Settings
from hotline import inbound, workflow
from hotline.auth import SYSTEM
from hotline.db import transaction
from hotline.errors import Invalid
from hotline.intake import IntakeRequest
from hotline.models import Area, Category, InboundMessage, Ticket, TicketEvent, Unit
from hotline.services import Services
from hotline.states import STOPPED_STATES, sorted_states

CHANNEL = "open311"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_LONG_NUMBER = re.compile(r"\d(?:[\s-]?\d){6,}")
_NOT_PHONE_CHARS = re.compile(r"[^\d+]")
UNCATEGORISED = "未分类"
RECEIVED_NOTICE = "已受理。工单生成后，可凭 token 查询工单编号和办理进度。"


def mask_numbers(text: str) -> str:
    """Every run of seven or more digits (spaces and hyphens between them allowed) as asterisks."""
    return _LONG_NUMBER.sub(lambda m: re.sub(r"\d", "*", m.group(0)), text)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _leaves(session: Session) -> list[tuple[Category, str, str]]:
    """(leaf, its path as text, its top-level category's name) for every active leaf, by code."""
    categories = {c.id: c for c in session.scalars(select(Category).where(Category.active))}
    parents = {c.parent_id for c in categories.values() if c.parent_id is not None}
    leaves = []
    for category in sorted(categories.values(), key=lambda c: c.code):
        if category.id in parents:
            continue
        path = [category]
        while path[-1].parent_id is not None and path[-1].parent_id in categories and len(path) < 10:
            path.append(categories[path[-1].parent_id])
        if path[-1].parent_id is not None:  # an ancestor is inactive: the leaf is not offered
            continue
        leaves.append((category, " / ".join(c.name for c in reversed(path)), path[-1].name))
    return leaves


def _leaf(session: Session, code: str) -> Category | None:
    return next((c for c, _, _ in _leaves(session) if c.code == code), None)


@dataclass(frozen=True)
class Open311Hotline:
    """The functions of ``Open311Backend`` over the hotline's database."""

    services: Services
    settings: Open311Settings

    def backend(self) -> Open311Backend:
        return Open311Backend(list_services=self.list_services, service_definition=self.service_definition,
                              submit=self.submit, find_requests=self.find_requests, find_request=self.find_request,
                              find_token=self.find_token, throttle=self.services.rate_limiter.webhook)

    def list_services(self) -> list[Service]:
        with self.services.sessions() as session:
            return [Service(service_code=c.code, service_name=c.name, description=path, group=group)
                    for c, path, group in _leaves(session)]

    def service_definition(self, code: str) -> ServiceDefinition | None:
        with self.services.sessions() as session:
            return ServiceDefinition(service_code=code) if _leaf(session, code) is not None else None

    def submit(self, client: str, new: NewServiceRequest) -> Receipt:
        token = uuid.uuid4().hex
        with self.services.sessions() as session:
            leaf = _leaf(session, new.service_code)
        if leaf is None:
            raise Open311Failure(404, f"service_code {new.service_code[:64]!r} not found")
        name = " ".join(part for part in (new.last_name, new.first_name) if part) or None
        phone = _NOT_PHONE_CHARS.sub("", new.phone) if new.phone else None
        message = inbound.Inbound(
            channel=CHANNEL, external_id=f"{client}:{token}",
            title=leaf.name, text=new.description or f"{leaf.name}（市民未填写描述）",
            citizen_name=name[:100] if name else None, citizen_phone=phone or None,
            place_text=new.address_string, latitude=new.lat, longitude=new.long,
            attachments=(inbound.Attachment(kind="image", url=new.media_url),) if new.media_url else (),
            raw={"client": client, "token": token, "service_code": new.service_code, "address_id": new.address_id,
                 "email": new.email, "device_id": new.device_id, "account_id": new.account_id,
                 "attributes": {k: list(v) for k, v in new.attributes.items()}},
        )
        try:
            with transaction(self.services.sessions) as session:
                inbound.accept(session, message, max_text_chars=self.services.settings.max_text_chars)
        except Invalid as invalid:
            raise Open311Failure(400, invalid.message) from None
        return Receipt(token=token, service_notice=RECEIVED_NOTICE, account_id=new.account_id)

    def find_token(self, token: str) -> TokenStatus | None:
        if not _TOKEN.match(token) or not self.settings.keys:
            return None
        keys = [f"{client}:{token}" for client in self.settings.keys]
        with self.services.sessions() as session:
            row = session.execute(
                select(InboundMessage.id, Ticket.number, Ticket.confidential)
                .outerjoin(Ticket, Ticket.id == InboundMessage.ticket_id)
                .where(InboundMessage.channel == CHANNEL, InboundMessage.external_id.in_(keys))
            ).first()
        if row is None:
            return None
        number = row.number if row.number is not None and not row.confidential else None
        return TokenStatus(token=token, service_request_id=number)

    def find_request(self, request_id: str) -> ServiceRequest | None:
        found = self._requests(Ticket.number == request_id, limit=1)
        return found[0] if found else None

    def find_requests(self, query: RequestQuery) -> list[ServiceRequest]:
        if query.service_request_ids:
            return self._requests(Ticket.number.in_(query.service_request_ids), limit=MAX_RESULTS)
        conditions = []
        if query.start is not None:
            conditions.append(Ticket.received_at >= query.start)
        if query.end is not None:
            conditions.append(Ticket.received_at <= query.end)
        stopped = sorted_states(STOPPED_STATES)
        if query.statuses == ("open",):
            conditions.append(Ticket.status.not_in(stopped))
        elif query.statuses == ("closed",):
            conditions.append(Ticket.status.in_(stopped))
        if query.service_codes:
            conditions.append(Ticket.category_id.in_(select(Category.id).where(Category.code.in_(query.service_codes))))
        return self._requests(*conditions, limit=min(query.limit, MAX_RESULTS))

    def _requests(self, *conditions: object, limit: int) -> list[ServiceRequest]:
        latest_reply = (select(TicketEvent.ticket_id, func.max(TicketEvent.id).label("event_id"))
                        .where(TicketEvent.type == "reply").group_by(TicketEvent.ticket_id).subquery())
        reply = aliased(TicketEvent)
        stmt = (
            select(Ticket, Category.code, Category.name, Unit.name, Area.name, reply.note)
            .outerjoin(Category, Category.id == Ticket.category_id)
            .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .outerjoin(latest_reply, latest_reply.c.ticket_id == Ticket.id)
            .outerjoin(reply, reply.id == latest_reply.c.event_id)
            .where(Ticket.confidential.is_(False), *conditions)  # type: ignore[arg-type]
            .order_by(Ticket.received_at.desc(), Ticket.id.desc())
            .limit(limit)
        )
        with self.services.sessions() as session:
            rows = session.execute(stmt).all()
        return [_public(t, code, name, unit, area, note) for t, code, name, unit, area, note in rows]


def _public(ticket: Ticket, code: str | None, name: str | None, unit: str | None, area: str | None,
            reply_note: str | None) -> ServiceRequest:
    requested = _aware(ticket.received_at)
    assert requested is not None
    return ServiceRequest(
        service_request_id=ticket.number,
        status="closed" if ticket.status in STOPPED_STATES else "open",
        service_code=code or "",
        service_name=name or UNCATEGORISED,
        requested_datetime=requested,
        updated_datetime=_aware(ticket.updated_at),
        expected_datetime=_aware(ticket.reply_due),
        status_notes=mask_numbers(reply_note) if reply_note else None,
        description=mask_numbers(ticket.text),
        agency_responsible=unit,
        address=area,
    )


def open311_handler(session: Session, row: InboundMessage, request: IntakeRequest,
                    ctx: inbound.Context) -> Ticket:
    """A new ticket; when the classifier gave it no category, the service the citizen chose."""
    ticket = inbound.new_ticket(session, row, request, ctx)
    code = (row.payload.get("raw") or {}).get("service_code")
    if ticket.category_id is None and isinstance(code, str):
        leaf = _leaf(session, code)
        if leaf is not None:
            workflow.perform(session, ticket.id, "recategorize", SYSTEM,
                             workflow.RecategorizeInput(category_id=leaf.id, note="市民通过Open311应用选择的类别"),
                             ctx.timing, now=ctx.now)
    return ticket


def mount_open311(app: FastAPI, services: Services) -> None:
    """``/open311/v2/`` over the database, with the keys of ``HOTLINE_OPEN311_KEYS``."""
    settings = services.settings.open311
    app.include_router(open311_router(Open311Hotline(services, settings).backend(), settings))
