"""The worker's handling of a stored phone step (``hotline.inbound.Handler`` for channel ``phone``), by
``raw["step"]``, each in the worker's transaction for that message:

- ``transcript``: a new ticket from what the caller said, with the analysis, not dispatched (an agent is about to
  take the call and confirms it: a draft for the agent), and the acceptance SMS (``hotline.notices``). A
  transcript the urgency detector flagged (``EmergencyLine``) is an ``emergency`` instead.
- ``emergency``: the ticket is flagged urgent and transferred (workflow ``transfer`` by the system actor), which
  records the line; the caller's SMS says so, with the ticket number (``hotline.notices``).
- ``transfer`` / ``conference``: the outcome of the emergency dial or of the three-party call, a ``call`` event
  on the call's ticket.
- ``voicemail``: a ticket with the recording attached (or, when the call already made one, a ``voicemail``
  event on it) and the acceptance SMS.
- ``queue_hangup`` and missed inbound calls (``call_status`` no-answer, busy, canceled, failed): a callback task
  in the agents' callback queue — see ``missed_call``.
- ``call_status`` otherwise: the final status and duration as a ``call`` event on the call's ticket; survey
  calls' statuses drive the retries (``survey_status``).
- ``survey_answer``: the workflow's ``callback`` by the system actor (then ``close`` when 满意 or 基本满意, as the
  agents' desk does; 不满意 stays for the supervisor); an answer not understood goes to the agents.

Missed calls (国办函〔2025〕66号: call missed callers back) are tickets, because the agents' callback queue is a
queue of tickets and an event must sit on one. When the call already made a ticket (the caller described the
request, then hung up in the queue) the ``missed_call`` event goes on that ticket; otherwise one ticket of kind
``help`` per caller per city day (「未接来电回拨」) collects every missed call of that day as ``missed_call``
events. A ticket still ``received`` with a ``missed_call`` event is listed in ``GET /api/desk/callbacks``; it
leaves the queue like any new ticket, when the agent who called back answers it directly, merges it into the
ticket made during the callback, or dispatches it. A withheld number cannot be called back and makes nothing.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import exists, or_, select, text
from sqlalchemy.orm import Session

from channels.phone import queue
from channels.phone.outbound import SurveyRef, parse_survey, queue_survey_call
from channels.phone.routes import CALL_STATUS_WORDS
from channels.phone.settings import PhoneSettings
from hotline import inbound, intake, notices, workflow
from hotline.auth import SYSTEM, channel_actor
from hotline.errors import Conflict
from hotline.labels import EMERGENCY_LINE_LABELS
from hotline.models import Citizen, InboundMessage, Kind, Status, Ticket, TicketEvent

CHANNEL = "phone"
ACTOR = channel_actor(CHANNEL)
MISSED_CALL = "missed_call"
VOICEMAIL = "voicemail"
CALL = "call"
SURVEY_CALL = "survey_call"
MISSED_TITLE = "未接来电回拨"
MISSED_STATUSES = frozenset({"no-answer", "busy", "canceled", "failed"})
SURVEY_FINAL = frozenset({"completed", *MISSED_STATUSES})


class CallTicketNotYet(Exception):
    """A later step of a call whose ticket is not made yet (another worker has its first step): retried."""


def call_ticket(session: Session, call_sid: str) -> Ticket | None:
    """The ticket an earlier step of this call made or joined (external ids are the CallSid or start with it)."""
    if not call_sid:
        return None
    escaped = call_sid.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return session.scalar(
        select(Ticket)
        .join(InboundMessage, InboundMessage.ticket_id == Ticket.id)
        .where(InboundMessage.channel == CHANNEL,
               or_(InboundMessage.external_id == call_sid,
                   InboundMessage.external_id.like(f"{escaped}:%", escape="\\")))
        .order_by(InboundMessage.id)
        .limit(1)
    )


def _now(ctx: inbound.Context) -> datetime:
    return ctx.now or datetime.now(UTC)


def make_handler(settings: PhoneSettings) -> inbound.Handler:
    """The handler for one city's phone settings (SMS templates, survey retries)."""

    def handle(session: Session, row: InboundMessage, request: intake.IntakeRequest,
               ctx: inbound.Context) -> Ticket | None:
        raw: dict[str, Any] = row.payload.get("raw") or {}
        step = raw.get("step")
        call_sid = str(raw.get("CallSid", ""))
        if step == "transcript":
            return transcript(session, row, request, ctx, settings, raw)
        if step == "emergency":
            ticket = call_ticket(session, call_sid) or create(session, row, request, ctx, extra=_call_data(raw))
            return emergency(session, ticket, str(raw["EmergencyLine"]), ctx)
        if step == "transfer":
            return call_event(session, row, ctx, call_sid, {
                "step": "transfer", "line": raw.get("EmergencyLine"), "dial_status": raw.get("DialCallStatus"),
                "connected": raw.get("DialCallStatus") in ("completed", "answered"),
                "dial_duration": raw.get("DialCallDuration")}, required=True)
        if step == "conference":
            return call_event(session, row, ctx, call_sid, {
                "step": "conference", "conference": raw.get("FriendlyName") or raw.get("ConferenceSid"),
                "event": raw.get("StatusCallbackEvent")}, required=False)
        if step == "voicemail":
            return voicemail(session, row, request, ctx, settings, raw)
        if step == "queue_hangup":
            return missed_call(session, row, request, ctx, call_sid, "排队等候时挂断")
        if step == "call_status":
            return call_status(session, row, request, ctx, settings, raw)
        if step == "survey_answer":
            return survey_answer(session, row, ctx, raw)
        raise ValueError(f"unknown phone step {step!r}")

    return handle


def _call_data(raw: dict[str, Any]) -> dict[str, Any]:
    data = {"call_sid": raw.get("CallSid")}
    if raw.get("Confidence"):
        data["speech_confidence"] = raw["Confidence"]
    return data


def create(
    session: Session, row: InboundMessage, request: intake.IntakeRequest, ctx: inbound.Context, *,
    extra: dict[str, Any], kind: Kind | None = None, title: str | None = None, text_: str | None = None,
) -> Ticket:
    """A ticket from this step, analysed but not dispatched: the agent who takes (or returns) the call decides."""
    update: dict[str, Any] = {k: v for k, v in {"kind": kind, "title": title, "text": text_}.items() if v}
    attachments = row.payload.get("attachments")
    return intake.create_ticket(
        session, request.model_copy(update=update), ACTOR, suggester=ctx.suggester, timing=ctx.timing, inbound=row,
        max_text_chars=ctx.max_text_chars, auto_dispatch=False, now=ctx.now,
        extra={**extra, **({"attachments": attachments} if attachments else {})},
    )


def transcript(session: Session, row: InboundMessage, request: intake.IntakeRequest, ctx: inbound.Context,
               settings: PhoneSettings, raw: dict[str, Any]) -> Ticket:
    ticket = create(session, row, request, ctx, extra={**_call_data(raw), "draft": True})
    queue.attach_ticket(session, str(raw.get("CallSid", "")), ticket.id)
    line = raw.get("EmergencyLine")
    if line:
        return emergency(session, ticket, str(line), ctx)
    notices.notify(session, ticket, notices.RECEIVED, cause=f"inbound{row.id}")
    return ticket


def emergency(session: Session, ticket: Ticket, line: str, ctx: inbound.Context) -> Ticket:
    """Flag the ticket urgent and transfer it to the line (the workflow's ``transfer`` records the line)."""
    ticket.urgent = True
    ticket.urgency_reason = ticket.urgency_reason or f"紧急转接{EMERGENCY_LINE_LABELS.get(line, line)}"
    if ticket.status == Status.received:
        note = f"来电转接{EMERGENCY_LINE_LABELS.get(line, line)}"
        workflow.perform(session, ticket.id, "transfer", SYSTEM, workflow.TransferInput(line=line, note=note),
                         ctx.timing, now=ctx.now)
    return ticket


def call_event(session: Session, row: InboundMessage, ctx: inbound.Context, call_sid: str, data: dict[str, Any],
               *, required: bool) -> Ticket | None:
    ticket = call_ticket(session, call_sid)
    if ticket is None:
        if required:
            raise CallTicketNotYet(f"call {call_sid} has no ticket yet")
        return None
    workflow.record_event(session, ticket, CALL, ACTOR, note=str(row.payload.get("text", "")),
                          data={"call_sid": call_sid, **data}, now=ctx.now)
    return ticket


def voicemail(session: Session, row: InboundMessage, request: intake.IntakeRequest, ctx: inbound.Context,
              settings: PhoneSettings, raw: dict[str, Any]) -> Ticket:
    call_sid = str(raw.get("CallSid", ""))
    existing = call_ticket(session, call_sid)
    data = {"call_sid": call_sid, "recording_sid": raw.get("RecordingSid"),
            "duration_seconds": raw.get("RecordingDuration"),
            "attachments": row.payload.get("attachments") or []}
    if existing is not None:
        workflow.record_event(session, existing, VOICEMAIL, ACTOR, note=request.text, data=data, now=ctx.now)
        return existing
    ticket = create(session, row, request, ctx, extra={"call_sid": call_sid})
    workflow.record_event(session, ticket, VOICEMAIL, ACTOR, note=request.text, data=data, now=ctx.now)
    notices.notify(session, ticket, notices.RECEIVED, cause=f"inbound{row.id}")
    return ticket


def _lock_caller_day(session: Session, phone: str, day: str) -> None:
    """Two workers handling two missed calls of one caller at once make one ticket (SQLite serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"phone-missed:{phone}:{day}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def missed_call(session: Session, row: InboundMessage, request: intake.IntakeRequest, ctx: inbound.Context,
                call_sid: str, reason: str) -> Ticket | None:
    """One callback task per caller per day (see the module docstring)."""
    now = _now(ctx)
    data = {"call_sid": call_sid, "reason": reason, "called_at": (request.received_at or now).isoformat()}
    note = f"未接来电：{reason}，请回拨。"
    ticket = call_ticket(session, call_sid)
    if ticket is None:
        phone = request.citizen.phone if request.citizen else None
        if not phone:
            return None  # a withheld number cannot be called back
        zone = ctx.timing.zone
        local_day = now.astimezone(zone).date()
        _lock_caller_day(session, phone, local_day.isoformat())
        day_start = datetime.combine(local_day, time(0), tzinfo=zone).astimezone(UTC)
        ticket = session.scalar(
            select(Ticket)
            .join(Citizen, Citizen.id == Ticket.citizen_id)
            .where(Ticket.channel == CHANNEL, Citizen.phone == phone, Ticket.status == Status.received,
                   Ticket.received_at >= day_start, Ticket.received_at < day_start + timedelta(days=1),
                   exists().where(TicketEvent.ticket_id == Ticket.id, TicketEvent.type == MISSED_CALL))
            .order_by(Ticket.id)
            .limit(1)
        )
        if ticket is None:
            ticket = create(session, row, request, ctx, extra={"call_sid": call_sid}, kind=Kind.help,
                            title=MISSED_TITLE, text_=f"未接来电（{reason}），请回拨来电人，了解诉求后办理。")
    workflow.record_event(session, ticket, MISSED_CALL, ACTOR, note=note, data=data, now=ctx.now)
    return ticket


def call_status(session: Session, row: InboundMessage, request: intake.IntakeRequest, ctx: inbound.Context,
                settings: PhoneSettings, raw: dict[str, Any]) -> Ticket | None:
    status = str(raw.get("CallStatus", ""))
    call_sid = str(raw.get("CallSid", ""))
    if raw.get("Survey"):
        return survey_status(session, ctx, settings, raw, status)
    inbound_call = str(raw.get("Direction", "inbound")) == "inbound"
    if inbound_call and status in MISSED_STATUSES:
        return missed_call(session, row, request, ctx, call_sid, CALL_STATUS_WORDS.get(status, status))
    if status != "completed":
        return call_ticket(session, call_sid)
    return call_event(session, row, ctx, call_sid, {"step": "status", "status": status,
                                                    "duration_seconds": raw.get("CallDuration")}, required=False)


def _survey_ticket(session: Session, raw: dict[str, Any]) -> tuple[SurveyRef, Ticket] | None:
    ref = parse_survey(str(raw.get("Survey", "")))
    if ref is None:
        return None
    ticket = session.get(Ticket, ref.ticket_id)
    return (ref, ticket) if ticket is not None else None


def _to_agents(session: Session, ticket: Ticket, ref: SurveyRef, note: str, ctx: inbound.Context,
               **data: Any) -> Ticket:
    workflow.record_event(session, ticket, SURVEY_CALL, SYSTEM, note=f"{note}转人工回访。",
                          data={"survey": ref.key, "attempt": ref.attempt, "to_agents": True, **data}, now=ctx.now)
    return ticket


def survey_status(session: Session, ctx: inbound.Context, settings: PhoneSettings, raw: dict[str, Any],
                  status: str) -> Ticket | None:
    """A survey call's final status: unanswered → the next try by policy, or the agents' callback queue."""
    found = _survey_ticket(session, raw)
    if found is None:
        return None
    ref, ticket = found
    if status not in SURVEY_FINAL:
        return ticket
    call_sid = str(raw.get("CallSid", ""))
    if status == "completed":
        answered = session.scalar(select(InboundMessage.id).where(
            InboundMessage.channel == CHANNEL, InboundMessage.external_id == f"{call_sid}:survey"))
        if answered is None and ticket.status == Status.replied:
            return _to_agents(session, ticket, ref, "自动回访电话接通后市民未作答，", ctx, call_sid=call_sid)
        return ticket
    words = CALL_STATUS_WORDS.get(status, status)
    if ticket.status != Status.replied:
        return ticket  # called back meanwhile: no more tries
    now = _now(ctx)
    due = settings.next_survey_attempt(ref.attempt, now)
    if due is not None and (ticket.callback_due is None or due <= ticket.callback_due):
        phone = ticket_phone(session, ticket)
        if phone and queue_survey_call(session, ticket, phone, ref.next(), due, now=ctx.now):
            workflow.record_event(
                session, ticket, SURVEY_CALL, SYSTEM,
                note=f"自动回访电话第{ref.attempt}次未接通（{words}），将于{due.astimezone(ctx.timing.zone):%m月%d日%H:%M}再拨。",
                data={"survey": ref.key, "attempt": ref.attempt, "status": status, "next_attempt_at": due.isoformat()},
                now=ctx.now)
            return ticket
    return _to_agents(session, ticket, ref, f"自动回访电话第{ref.attempt}次未接通（{words}），", ctx, status=status)


def ticket_phone(session: Session, ticket: Ticket) -> str | None:
    if ticket.citizen_id is None:
        return None
    return session.scalar(select(Citizen.phone).where(Citizen.id == ticket.citizen_id))


def survey_answer(session: Session, row: InboundMessage, ctx: inbound.Context, raw: dict[str, Any]) -> Ticket | None:
    """The citizen's answers go through the workflow like an agent's callback, by the system actor."""
    found = _survey_ticket(session, raw)
    if found is None:
        return None
    ref, ticket = found
    text_said = str(row.payload.get("text", ""))
    solved, satisfaction = raw.get("Solved"), raw.get("Satisfaction")
    if solved is None or satisfaction is None:
        if ticket.status != Status.replied:
            return ticket
        return _to_agents(session, ticket, ref, "自动回访未得到答复，", ctx, call_sid=raw.get("CallSid"))
    try:
        answer = workflow.CallbackInput.model_validate(
            {"satisfaction": satisfaction, "solved": solved == "true", "note": f"自动回访：{text_said}"})
        workflow.perform(session, ticket.id, "callback", SYSTEM, answer, ctx.timing, now=ctx.now)
    except Conflict:
        workflow.record_event(session, ticket, SURVEY_CALL, SYSTEM,
                              note=f"自动回访的答复到达时工单已不在待回访状态，未作处理：{text_said}",
                              data={"survey": ref.key, "solved": solved, "satisfaction": satisfaction}, now=ctx.now)
        return ticket
    if satisfaction != "unsatisfied":
        workflow.perform(session, ticket.id, "close", SYSTEM, workflow.CloseInput(note="自动回访满意，归档"),
                         ctx.timing, now=ctx.now)
    return ticket
