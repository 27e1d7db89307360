"""REST: stored channel messages — what came in, what became of it; admins replay the failed ones."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from hotline import audit, inbound, intake
from hotline.api.deps import IdPath, SessionDep, UserDep, channel_actor, get_services, require
from hotline.db import transaction
from hotline.errors import Forbidden, Invalid, NotFound
from hotline.models import InboundMessage, Role, Ticket

router = APIRouter(prefix="/api")


class InboundOut(BaseModel):
    id: int
    channel: str
    external_id: str
    state: str
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime | None
    ticket_id: int | None
    ticket_number: str | None
    payload: dict[str, Any]


class InboundPage(BaseModel):
    items: list[InboundOut]
    counts: dict[str, int]


def _out(row: InboundMessage, number: str | None) -> InboundOut:
    return InboundOut(id=row.id, channel=row.channel, external_id=row.external_id, state=row.state,
                      attempts=row.attempts, last_error=row.last_error, received_at=row.received_at,
                      processed_at=row.processed_at, next_attempt_at=row.next_attempt_at, ticket_id=row.ticket_id,
                      ticket_number=number, payload=row.payload)


class AcceptedOut(BaseModel):
    inbound_id: int
    duplicate: bool


_ACCEPTED_DOC = "收到并已保存，稍后生成工单 (stored; the worker makes the ticket)"
_REPEAT_DOC = "重复投递：这条消息此前已收到，不再保存 (a repeat of a stored message)"


@router.post(
    "/inbound", status_code=202, tags=["intake"],
    responses={202: {"model": AcceptedOut, "description": _ACCEPTED_DOC},
               200: {"model": AcceptedOut, "description": _REPEAT_DOC}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/IntakeRequest"}}}}},
)
async def accept_inbound(request: Request) -> Response:
    """The durable intake over HTTP for a channel's service key (the city portal, an integration): the message is
    stored and acknowledged at once (202), the worker makes the ticket. The same (channel, external_id) again
    answers 200 with the same id and stores nothing.

    Lean on purpose, as the path every channel message takes: no dependencies for FastAPI to solve, the body
    validated straight from its bytes, the answer written without a response model, and the one INSERT with its
    commit in one round trip on the event loop (with the usual dependencies and response model, FastAPI's own work
    was a third of an accept's CPU). The contract is the same as a declared route's: the OpenAPI document names the
    body and the answers, a bad body gets the app's 422."""
    services = get_services(request)
    actor = await channel_actor(services, request.headers.get("authorization"))
    if actor.channel is None:
        raise Forbidden("POST /api/inbound takes a channel's service key; agents use POST /api/intake")
    try:
        body = intake.IntakeRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
    if body.channel != actor.channel:
        raise Invalid(f"this key belongs to channel '{actor.channel}', not '{body.channel}'", field="channel")
    if body.external_id is None:
        raise Invalid("external_id is needed, so that a retried delivery is recognised", field="external_id")
    citizen = body.citizen
    message = inbound.Inbound(
        channel=body.channel, external_id=body.external_id, text=body.text, title=body.title or "",
        citizen_name=citizen.name if citizen else None, citizen_phone=citizen.phone if citizen else None,
        wechat_openid=citizen.wechat_openid if citizen else None, place_text=body.location,
        received_at=body.received_at, confidential=body.confidential,
    )

    limit = services.settings.max_text_chars
    engine = services.accept_engine()
    if engine is not None:  # PostgreSQL: stored (autocommit) before the answer
        accepted = await inbound.accept_on(engine, message, max_text_chars=limit)
    else:
        def store() -> inbound.Accepted:
            with transaction(services.sessions) as session:  # committed before the answer
                return inbound.accept(session, message, max_text_chars=limit)

        accepted = await run_in_threadpool(store)
    answer = AcceptedOut(inbound_id=accepted.inbound_id, duplicate=accepted.duplicate)
    return Response(answer.model_dump_json(), status_code=200 if accepted.duplicate else 202,
                    media_type="application/json")


@router.get("/inbound", response_model=InboundPage, tags=["intake"])
def list_inbound(
    session: SessionDep, actor: UserDep,
    state: Literal["accepted", "processing", "done", "failed"] = "failed",
    channel: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> InboundPage:
    """Admins: the stored messages of one state (failed ones by default, newest first) and the count per state."""
    require(actor, Role.admin)
    stmt = (select(InboundMessage, Ticket.number).outerjoin(Ticket, Ticket.id == InboundMessage.ticket_id)
            .where(InboundMessage.state == state).order_by(InboundMessage.id.desc()).limit(limit))
    if channel:
        stmt = stmt.where(InboundMessage.channel == channel)
    counts = dict(session.execute(select(InboundMessage.state, func.count()).group_by(InboundMessage.state)).all())
    return InboundPage(items=[_out(row, number) for row, number in session.execute(stmt)],
                       counts={str(k): int(v) for k, v in counts.items()})


@router.get("/inbound/{inbound_id}", response_model=InboundOut, tags=["intake"])
def get_inbound(inbound_id: IdPath, session: SessionDep, actor: UserDep) -> InboundOut:
    """Admins: one stored message and what became of it (the channels tab follows a test message to its ticket)."""
    require(actor, Role.admin)
    found = session.execute(select(InboundMessage, Ticket.number)
                            .outerjoin(Ticket, Ticket.id == InboundMessage.ticket_id)
                            .where(InboundMessage.id == inbound_id)).first()
    if found is None:
        raise NotFound(f"inbound message {inbound_id} not found", zh=f"渠道消息 #{inbound_id} 不存在")
    return _out(found[0], found[1])


@router.post("/inbound/{inbound_id}/replay", response_model=InboundOut, tags=["intake"])
def replay_inbound(inbound_id: IdPath, session: SessionDep, actor: UserDep) -> InboundOut:
    """Admins: send a failed message through processing again (its payload as it came)."""
    require(actor, Role.admin)
    row = inbound.replay(session, inbound_id)  # only a failed message is replayed
    audit.record(session, actor, "replay", "inbound", row.id, before={"state": inbound.FAILED},
                 after={"state": row.state, "attempts": row.attempts},
                 summary=f"重新处理{row.channel}渠道消息 #{row.id}")
    session.commit()
    return _out(row, None)
