"""The agent desk's phone endpoints (``/api/phone/…``), mounted with the phone channel:

- ``GET /api/phone/queue``: the callers waiting now, oldest first, each with the number (masked per role,
  ``hotline.views``), the draft ticket the transcript made (text and analysis: suggested category and unit) and the
  caller's earlier tickets — the screen-pop before the call is even taken.
- ``POST /api/phone/queue/next``: the oldest waiting call becomes this agent's (``queue.claim_next``, race-safe)
  and Twilio is told to put it through to the agent's own device: ``calls(sid).update(twiml=<Dial>…)`` with
  ``<Client>`` (the browser phone), ``<Sip>`` or ``<Number>`` (``users.phone_device``). The claim is committed
  before Twilio is asked, so no row lock is held over the network; a call Twilio no longer has (hung up meanwhile)
  is released as abandoned and the next one tried; Twilio unreachable or refusing the account puts the call back in
  the queue (503).
- ``POST /api/phone/queue/{call_id}/three-party``: caller, agent and an emergency line in one ``<Conference>``:
  the caller's call is redirected into the room, the agent's device and the line are added through the REST API;
  the ticket records it (a ``call`` event).
- ``POST /api/phone/callbacks/{ticket_id}/call``: 回拨 a missed call from the callback queue: Twilio rings the
  agent's device, then dials the citizen. Once per missed call: a replay answers the call already placed (and
  Twilio's idempotency token covers a lost answer).
- ``GET /api/phone/voice-token``: the browser phone's AccessToken (VoiceGrant), only where the city enables it.
"""

# No ``from __future__ import annotations``: FastAPI resolves the body models declared inside ``desk_router``.
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.twiml.voice_response import VoiceResponse

from channels.phone import queue
from channels.phone.numbers import e164, national
from channels.phone.prompts import EMERGENCY_LINES
from channels.phone.rest import PhoneRest, idempotency, make_client, retryable
from channels.phone.settings import PhoneSettings
from channels.phone.twiml import Ivr, Paths
from hotline import views, workflow
from hotline.api.deps import IdPath, SessionDep, UserDep, require
from hotline.auth import Actor
from hotline.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from hotline.models import Citizen, QueuedCall, Role, Status, Ticket, TicketEvent, User
from hotline.visibility import visible_tickets

QUEUE_READERS = (Role.agent, Role.dispatcher, Role.supervisor)
CALL_EVENT = "call"
MISSED_CALL = "missed_call"
CALLBACK_CALL = "callback_call"
TOKEN_TTL_SECONDS = 3600
#: Twilio's answers to a redirect of a call it no longer has (21220 not in progress; unknown call)
CALL_GONE = frozenset({400, 404})


class Unavailable(DomainError):
    status_code = 503
    people_default = "电话平台暂时无法连接，请稍后重试"


class EarlierTicket(BaseModel):
    id: int
    number: str
    status: str
    title: str
    received_at: datetime


class WaitingCall(BaseModel):
    id: int
    phone: str | None
    queued_at: datetime
    status: str
    ticket: views.TicketOut | None
    earlier: list[EarlierTicket]


class QueueOut(BaseModel):
    server_time: datetime
    items: list[WaitingCall]


class TakenCall(BaseModel):
    call: WaitingCall
    device: str


class ThreePartyIn(BaseModel):
    line: Literal["110", "119", "120", "122"]


class ThreePartyOut(BaseModel):
    conference: str
    line: str
    line_call_sid: str


class CallbackOut(BaseModel):
    ticket_id: int
    call_sid: str
    device: str
    replayed: bool


class VoiceTokenOut(BaseModel):
    token: str
    identity: str
    expires_in: int


def client_identity(user_id: int) -> str:
    """The browser phone's identity of an agent (the AccessToken's and ``<Dial><Client>``'s)."""
    return f"agent-{user_id}"


def _caller_phone(call: QueuedCall) -> str | None:
    return national(call.from_number or "") if call.from_number else None


def waiting_call_out(session: Session, actor: Actor, call: QueuedCall) -> WaitingCall:
    phone = _caller_phone(call)
    shown = phone if views.sees_full_phone(actor) else views.mask_phone(phone)
    ticket_id = call.ticket_id or queue.draft_ticket_id(session, call.call_sid)
    draft = None
    if ticket_id is not None:
        draft = session.scalar(visible_tickets(actor).where(Ticket.id == ticket_id)
                               .options(*views.ticket_load_options()))
    earlier: list[EarlierTicket] = []
    if phone:
        citizens = select(Citizen.id).where(Citizen.phone == phone)
        rows = session.scalars(visible_tickets(actor).where(Ticket.citizen_id.in_(citizens))
                               .where(Ticket.id != (ticket_id or -1))
                               .order_by(Ticket.received_at.desc(), Ticket.id.desc()).limit(10))
        earlier = [EarlierTicket(id=t.id, number=t.number, status=t.status,
                                 title=views.shown_text(t.title or t.text[:30], actor), received_at=t.received_at)
                   for t in rows]
    return WaitingCall(id=call.id, phone=shown, queued_at=call.queued_at, status=call.status,
                       ticket=views.ticket_out(draft, actor) if draft is not None else None, earlier=earlier)


def device_of(settings: PhoneSettings, user: User) -> tuple[str, str]:
    """(noun, address) the agent's calls are put through to: the browser phone, a SIP address or a number."""
    if settings.twilio_browser_phone:
        return "client", client_identity(user.id)
    device = (user.phone_device or "").strip()
    if device.startswith("sip:"):
        return "sip", device
    number = e164(device) if device else None
    if number is None:
        raise Conflict("the agent has no phone device", zh="您的账号还没有设置接听设备（电话号码或 SIP 地址），"
                       "请管理员在账号设置中填写后再接听")
    return "number", number


def dial_twiml(settings: PhoneSettings, device: tuple[str, str], say: str, *, to_citizen: str | None = None
               ) -> VoiceResponse:
    """Put the call through to ``device`` (a queued call), or, for a callback, from the agent on to the citizen."""
    ivr = Ivr.from_settings(settings)
    response = VoiceResponse()
    response.say(say, voice=ivr.voice, language=ivr.say_language)
    dial = response.dial(caller_id=settings.caller_id, answer_on_bridge=True, timeout=30)
    if to_citizen is not None:
        dial.number(to_citizen)
        return response
    noun, address = device
    if noun == "client":
        dial.client(address)
    elif noun == "sip":
        dial.sip(address)
    else:
        dial.number(address)
    return response


def _device_label(device: tuple[str, str]) -> str:
    noun, address = device
    return {"client": "浏览器电话", "sip": "SIP 话机"}.get(noun, "电话") + f"（{address}）"


def _user(session: Session, actor: Actor) -> User:
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None:
        raise Forbidden("desk users only")
    return user


def desk_router(settings: PhoneSettings, rest: PhoneRest | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/phone", tags=["phone desk"])
    twilio = rest

    def api() -> PhoneRest:
        nonlocal twilio
        if twilio is None:
            twilio = PhoneRest(make_client(settings), settings)
        return twilio

    @router.get("/queue", response_model=QueueOut)
    def waiting(session: SessionDep, actor: UserDep) -> QueueOut:
        """The callers waiting for an agent now, oldest first (numbers masked for dispatchers)."""
        require(actor, *QUEUE_READERS)
        items = [waiting_call_out(session, actor, c) for c in queue.waiting_calls(session)]
        return QueueOut(server_time=datetime.now(UTC), items=items)

    @router.post("/queue/next", response_model=TakenCall)
    def take_next(session: SessionDep, actor: UserDep) -> TakenCall:
        """接听下一个: the oldest waiting call, put through to this agent's device; answers it with its draft."""
        require(actor, Role.agent)
        device = device_of(settings, _user(session, actor))
        while True:
            call = queue.claim_next(session, actor.user_id or 0)
            if call is None:
                raise NotFound("nobody is waiting", zh="目前没有排队等候的来电")
            session.commit()
            twiml = dial_twiml(settings, device, settings.phone_prompts.connect_agent)
            try:
                with idempotency(f"phone:take:{call.call_sid}"):
                    api().client.calls(call.call_sid).update(twiml=str(twiml))
            except TwilioRestException as error:
                if error.status in CALL_GONE:
                    queue.release(session, call)  # the caller is gone: the next one
                    session.commit()
                    continue
                _back_to_queue(session, call)  # Twilio down or our account refused: the caller keeps waiting
                raise Unavailable(f"Twilio answered {error.status} {error.code}") from error
            except OSError as error:
                _back_to_queue(session, call)
                raise Unavailable("Twilio unreachable") from error
            return TakenCall(call=waiting_call_out(session, actor, call), device=_device_label(device))

    def _back_to_queue(session: Session, call: QueuedCall) -> None:
        call.status, call.taken_by, call.taken_at = queue.WAITING, None, None
        session.flush()
        session.commit()

    @router.post("/queue/{call_id}/three-party", response_model=ThreePartyOut)
    def three_party(session: SessionDep, actor: UserDep, call_id: IdPath, body: ThreePartyIn) -> ThreePartyOut:
        """三方通话: the caller, this agent and the emergency line in one conference; the ticket records it."""
        require(actor, Role.agent)
        call = session.get(QueuedCall, call_id)
        if call is None or call.status != queue.TAKEN or call.taken_by != actor.user_id:
            raise NotFound("not a call this agent holds", zh="这通来电不在您的线上，无法发起三方通话")
        if body.line not in EMERGENCY_LINES:
            raise Invalid("unknown emergency line", field="line")
        device = device_of(settings, _user(session, actor))
        room = f"hotline-{call.call_sid}"
        key = f"phone:three-party:{call.call_sid}:{body.line}"
        try:
            api().move_to_conference(call.call_sid, body.line, room, key=f"{key}:caller")
            with idempotency(f"{key}:agent"):
                api().client.conferences(room).participants.create(
                    from_=settings.caller_id, to=_participant_address(device), end_conference_on_exit=True,
                    beep="false", label="agent")
            line_sid = api().add_emergency_line(room, body.line, key=f"{key}:line")
        except TwilioRestException as error:
            if retryable(error):
                raise Unavailable(f"Twilio answered {error.status}") from error
            raise Conflict(f"Twilio refused the conference: {error.msg}",
                           zh="电话平台拒绝了三方通话（来电可能已挂断）") from error
        except OSError as error:
            raise Unavailable("Twilio unreachable") from error
        call.conference = room
        ticket_id = call.ticket_id or queue.draft_ticket_id(session, call.call_sid)
        if ticket_id is not None:
            ticket = session.get(Ticket, ticket_id)
            if ticket is not None:
                label = settings.phone_prompts.emergency_line_names.get(body.line, body.line)
                workflow.record_event(session, ticket, CALL_EVENT, actor,
                                      note=f"三方通话：话务员将{label}接入通话。",
                                      data={"step": "three_party", "line": body.line, "conference": room,
                                            "call_sid": call.call_sid, "line_call_sid": line_sid})
        session.commit()
        return ThreePartyOut(conference=room, line=body.line, line_call_sid=line_sid)

    @router.post("/callbacks/{ticket_id}/call", response_model=CallbackOut)
    def call_back(session: SessionDep, actor: UserDep, ticket_id: IdPath) -> CallbackOut:
        """回拨: ring this agent's device, then the citizen of a missed call (once per missed call)."""
        require(actor, Role.agent)
        ticket = session.scalar(visible_tickets(actor).where(Ticket.id == ticket_id))
        if ticket is None:
            raise NotFound(f"ticket {ticket_id} not found")
        missed = session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.type == MISSED_CALL)
                                .order_by(TicketEvent.id.desc()).limit(1))
        if missed is None or ticket.status != Status.received:
            raise Conflict("not a missed call waiting for a callback", zh="这张工单不是待回拨的未接来电")
        phone = session.scalar(select(Citizen.phone).where(Citizen.id == ticket.citizen_id)) \
            if ticket.citizen_id else None
        to_citizen = e164(phone or "")
        if to_citizen is None:
            raise Conflict("no number to call back", zh="来电人号码无法回拨")
        key = f"phone:callback:{ticket.id}:{missed.id}"
        placed = session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.type == CALLBACK_CALL)
                                .order_by(TicketEvent.id.desc()).limit(1))
        if placed is not None and placed.data.get("key") == key:
            return CallbackOut(ticket_id=ticket.id, call_sid=str(placed.data.get("call_sid")),
                               device=str(placed.data.get("device", "")), replayed=True)
        device = device_of(settings, _user(session, actor))
        twiml = dial_twiml(settings, device, settings.phone_prompts.callback_agent, to_citizen=to_citizen)
        try:
            with idempotency(key):
                created: Any = api().client.calls.create(
                    to=_participant_address(device), from_=settings.caller_id, twiml=str(twiml),
                    status_callback=Ivr.from_settings(settings).url(Paths.STATUS), status_callback_method="POST")
        except TwilioRestException as error:
            if retryable(error):
                raise Unavailable(f"Twilio answered {error.status}") from error
            raise Conflict(f"Twilio refused the call: {error.msg}", zh="电话平台拒绝了回拨呼叫") from error
        except OSError as error:
            raise Unavailable("Twilio unreachable") from error
        label = _device_label(device)
        workflow.record_event(session, ticket, CALLBACK_CALL, actor, note=f"话务员回拨来电人（先接通{label}）。",
                              data={"key": key, "call_sid": str(created.sid), "device": label})
        session.commit()
        return CallbackOut(ticket_id=ticket.id, call_sid=str(created.sid), device=label, replayed=False)

    @router.get("/voice-token", response_model=VoiceTokenOut)
    def voice_token(actor: UserDep) -> VoiceTokenOut:
        """The browser phone's AccessToken (VoiceGrant; identity = this agent), where the city enables it."""
        require(actor, Role.agent)
        if not settings.twilio_browser_phone:
            raise NotFound("the browser phone is off", zh="本市未开通浏览器接听（HOTLINE_TWILIO_BROWSER_PHONE）")
        identity = client_identity(actor.user_id or 0)
        token = AccessToken(settings.twilio_account_sid, settings.twilio_api_key,
                            settings.twilio_api_secret.get_secret_value(), identity=identity, ttl=TOKEN_TTL_SECONDS)
        token.add_grant(VoiceGrant(outgoing_application_sid=settings.twilio_twiml_app_sid, incoming_allow=True))
        return VoiceTokenOut(token=token.to_jwt(), identity=identity, expires_in=TOKEN_TTL_SECONDS)

    return router


def _participant_address(device: tuple[str, str]) -> str:
    """The ``To`` of a REST call or participant for the agent's device."""
    noun, address = device
    return f"client:{address}" if noun == "client" else address
