"""The Twilio webhooks: ``POST /channels/twilio/voice`` (configured on the hotline's numbers), its IVR steps, and
``POST /channels/twilio/status`` (call status callbacks).

``phone_router`` is built from the functions that reach the rest of the system, so the channel stays a protocol
layer: ``accept(session, PhoneMessage)`` stores what a step brought (a transcript, a voicemail, an emergency
transfer, a call status, a survey answer) durably under (channel, external_id) — a replayed step is a duplicate and
creates nothing new — and ``ticket_status(session, number, caller)`` says a ticket's status in a sentence, or
None when there is no such ticket *filed from that number*. The routes commit the session after ``accept``.

Every request is checked against ``X-Twilio-Signature`` first (URL from ``HOTLINE_PUBLIC_BASE_URL``): forged or
unsigned → 403, logged, nothing stored. The work per request is one insert: Twilio waits 15 s at most.
"""

# No ``from __future__ import annotations`` here: FastAPI must resolve the dependency aliases defined inside
# ``phone_router`` (``Form``, ``Db``) when the routes are declared, which string annotations would prevent.
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from channels.phone.prompts import EMERGENCY_LINES
from channels.phone.settings import PhoneSettings
from channels.phone.signature import SIGNATURE_HEADER, SignatureRefused, TwilioSignature
from channels.phone.survey import satisfaction_of, solved_of
from channels.phone.twiml import EMERGENCY_KEYS, TICKET_NUMBER_DIGITS, Ivr, Paths
from nlp.signals import detect_urgency

log = logging.getLogger(__name__)

Step = Literal[
    "transcript", "emergency", "transfer", "queue_hangup", "voicemail", "call_status", "conference", "survey_answer"
]
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
SATISFACTION_WORDS = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}
CALL_STATUS_WORDS = {
    "queued": "排队中", "initiated": "已发起", "ringing": "振铃中", "in-progress": "通话中", "completed": "已结束",
    "busy": "占线", "no-answer": "无人接听", "canceled": "已取消", "failed": "呼叫失败",
}


@dataclass(frozen=True)
class PhoneMessage:
    """What one webhook step brings, in the shape of the intake's inbound message (channel ``phone``).

    ``raw`` is Twilio's form as received, plus ``step`` (what happened) and, where the channel worked something
    out, ``EmergencyLine``, ``Solved``, ``Satisfaction`` or ``Survey``. ``recording_url`` is a voicemail's audio.
    """

    external_id: str
    step: Step
    text: str
    citizen_phone: str
    received_at: datetime
    raw: dict[str, str] = field(default_factory=dict)
    recording_url: str = ""
    channel: str = "phone"


AcceptFn = Callable[[Session, PhoneMessage], Any]
TicketStatusFn = Callable[[Session, str, str], str | None]
#: the desk's view of the queue (``channels.phone.queue``): (session, CallSid, From) when the caller is queued;
#: (session, CallSid, "abandoned" | "voicemail") when the caller left it without an agent
QueuedFn = Callable[[Session, str, str], None]
LeftQueueFn = Callable[[Session, str, str], bool]
SessionDependency = Callable[..., Iterator[Session]]


def emergency_line_of_text(text: str) -> str | None:
    """The emergency line the urgency detector names for a transcript (None: not an emergency)."""
    return detect_urgency("", text).emergency_line


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _xml(twiml: VoiceResponse) -> Response:
    return Response(content=str(twiml), media_type="application/xml")


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def phone_router(
    settings: PhoneSettings,
    *,
    accept: AcceptFn,
    session: SessionDependency,
    ticket_status: TicketStatusFn,
    emergency_line_of: Callable[[str], str | None] = emergency_line_of_text,
    now: Callable[[], datetime] = _utcnow,
    throttle: Callable[[str, str], int | None] | None = None,
    queued: QueuedFn | None = None,
    left_queue: LeftQueueFn | None = None,
) -> APIRouter:
    """The webhook routes for one city's phone settings (see the module docstring for the two functions)."""
    ivr = Ivr.from_settings(settings)
    signature = TwilioSignature(settings.auth_token, settings.public_base_url)
    router = APIRouter(tags=["phone"])

    async def twilio_form(request: Request) -> dict[str, str]:
        form = await request.form()
        fields = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
        try:
            signature.verify(request.url.path, request.url.query, fields, request.headers.get(SIGNATURE_HEADER))
        except SignatureRefused as refused:
            peer = request.client.host if request.client else "?"
            log.warning("refused a Twilio webhook: %s (from %s)", refused, peer)
            raise HTTPException(status_code=403, detail="invalid Twilio signature") from None
        return dict(fields)

    Form = Annotated[dict[str, str], Depends(twilio_form)]
    Db = Annotated[Session, Depends(session)]

    def store(db: Session, form: dict[str, str], step: Step, external_id: str, text: str, **extra: str) -> None:
        recording_url = extra.pop("recording_url", "")
        caller = form.get("From", "") if form.get("Direction", "inbound") == "inbound" else form.get("To", "")
        message = PhoneMessage(
            external_id=external_id, step=step, text=text, citizen_phone=caller, received_at=now(),
            raw={**form, "step": step, **extra}, recording_url=recording_url,
        )
        accept(db, message)
        db.commit()

    def queue_or_voicemail(db: Session, form: dict[str, str], intro: str | None = None) -> Response:
        if settings.is_night(now()):
            return _xml(ivr.voicemail(night=True))
        if queued is not None and form.get("CallSid"):
            queued(db, form["CallSid"], form.get("From", ""))
            db.commit()
        return _xml(ivr.queue(intro))

    def leave_queue(db: Session, form: dict[str, str], status: str) -> None:
        if left_queue is not None and form.get("CallSid") and left_queue(db, form["CallSid"], status):
            db.commit()

    def line_label(line: str) -> str:
        return ivr.prompts.emergency_line_names[line]

    @router.post(Paths.VOICE)
    def voice(form: Form) -> Response:
        caller = form.get("From", "")
        wait = throttle("twilio_caller", caller) if throttle is not None and caller else None
        if wait:
            # TwiML, not a 429: Twilio would play its own English "application error" to the citizen
            log.warning("phone: %s calls too often; told to call later (%d s)", caller[:7], wait)
            return _xml(ivr.too_many_calls())
        return _xml(ivr.welcome())

    @router.post(Paths.MENU)
    def menu(form: Form, db: Db, tries: int = 0) -> Response:
        digits = form.get("Digits", "")
        if digits == "1":
            return _xml(ivr.describe())
        if digits == "2":
            return _xml(ivr.status_prompt())
        if digits == "9":
            return _xml(ivr.emergency_menu())
        if digits == "0" or tries >= 2:
            return queue_or_voicemail(db, form)
        return _xml(ivr.menu_again(no_input=not digits, tries=tries + 1))

    @router.post(Paths.DESCRIBE)
    def describe(form: Form, db: Db) -> Response:
        text = form.get("SpeechResult", "").strip()
        if not text:
            return queue_or_voicemail(db, form, ivr.prompts.describe_not_heard)
        line = emergency_line_of(text)
        extra = {"EmergencyLine": line} if line else {}
        store(db, form, "transcript", form["CallSid"], text, **extra)
        if line:
            return _xml(ivr.transfer(line, settings.emergency_number(line), detected=True))
        return queue_or_voicemail(db, form, ivr.prompts.describe_received)

    @router.post(Paths.EMERGENCY)
    def emergency(form: Form, db: Db, tries: int = 0) -> Response:
        line = EMERGENCY_KEYS.get(form.get("Digits", ""))
        if line is None:
            if tries >= 1:
                return queue_or_voicemail(db, form)
            return _xml(ivr.emergency_menu(tries=tries + 1))
        text = f"来电人在语音菜单中选择紧急转接{line}（{line_label(line)}）。"
        store(db, form, "emergency", f"{form['CallSid']}:emergency", text, EmergencyLine=line)
        return _xml(ivr.transfer(line, settings.emergency_number(line)))

    @router.post(Paths.TRANSFER_DONE)
    def transfer_done(form: Form, db: Db, line: str) -> Response:
        if line not in EMERGENCY_LINES:
            raise HTTPException(status_code=422, detail="unknown emergency line")
        status = form.get("DialCallStatus", "")
        connected = status in ("completed", "answered")
        outcome = "已接通" if connected else f"未接通（{CALL_STATUS_WORDS.get(status, status or '未知')}）"
        text = f"紧急转接{line}（{line_label(line)}）{outcome}。"
        store(db, form, "transfer", f"{form['CallSid']}:transfer:{line}", text, EmergencyLine=line)
        if connected:
            return _xml(ivr.goodbye())
        if queued is not None:
            queued(db, form["CallSid"], form.get("From", ""))
            db.commit()
        return _xml(ivr.queue(ivr.prompts.transfer_failed))

    @router.post(Paths.JOIN_CONFERENCE)
    def join_conference(form: Form, line: str, room: str) -> Response:
        if line not in EMERGENCY_LINES:
            raise HTTPException(status_code=422, detail="unknown emergency line")
        return _xml(ivr.three_party(line, room))

    @router.post(Paths.CONFERENCE, status_code=204)
    def conference(form: Form, db: Db) -> Response:
        event = form.get("StatusCallbackEvent", "")
        key = f"{form.get('ConferenceSid', '')}:{event}:{form.get('CallSid', '')}:{form.get('SequenceNumber', '')}"
        store(db, form, "conference", key, f"三方通话：{event}")
        return Response(status_code=204)

    @router.post(Paths.STATUS_QUERY)
    def status_query(form: Form, db: Db) -> Response:
        number = form.get("Digits", "").strip("#")
        found = None
        if len(number) == TICKET_NUMBER_DIGITS and number.isdigit():
            found = ticket_status(db, number, form.get("From", ""))
        return _xml(ivr.status_answer(number, found))

    @router.post(Paths.STATUS_MORE)
    def status_more(form: Form, db: Db) -> Response:
        if form.get("Digits") == "0":
            return queue_or_voicemail(db, form)
        return _xml(ivr.goodbye())

    @router.post(Paths.HOLD)
    def hold(form: Form) -> Response:
        position = _int(form.get("QueuePosition"), 0) - 1
        return _xml(ivr.hold(_int(form.get("QueueTime")), position if position > 0 else None))

    @router.post(Paths.QUEUE_RESULT)
    def queue_result(form: Form, db: Db) -> Response:
        result = form.get("QueueResult", "")
        if result == "hangup":
            leave_queue(db, form, "abandoned")
            store(db, form, "queue_hangup", f"{form['CallSid']}:queue", "来电人在排队等候时挂断，需要回拨。")
            return _xml(VoiceResponse())
        if result in ("bridged", "redirected"):
            return _xml(VoiceResponse())
        leave_queue(db, form, "voicemail")
        return _xml(ivr.voicemail(night=settings.is_night(now())))

    def store_voicemail(db: Session, form: dict[str, str]) -> None:
        seconds = _int(form.get("RecordingDuration"))
        text = f"来电人语音留言，时长{seconds}秒，请收听录音。"
        store(db, form, "voicemail", f"{form['CallSid']}:recording:{form.get('RecordingSid', '')}", text,
              recording_url=form["RecordingUrl"])

    @router.post(Paths.RECORDED)
    def recorded(form: Form, db: Db) -> Response:
        # The Record's action carries the caller's number; Twilio requests it even when the caller hangs up.
        recorded = bool(form.get("RecordingUrl")) and _int(form.get("RecordingDuration")) > 0
        if recorded:
            store_voicemail(db, form)
        return _xml(ivr.voicemail_done(recorded=recorded))

    @router.post(Paths.RECORDING, status_code=204)
    def recording(form: Form, db: Db) -> Response:
        # The recording status callback names no caller: it is kept in case the action was lost (same external
        # id, so after the action it is a duplicate); the CallSid links it to the call's other messages.
        if form.get("RecordingStatus", "completed") == "completed" and form.get("RecordingUrl"):
            store_voicemail(db, form)
        return Response(status_code=204)

    @router.post(Paths.STATUS, status_code=204)
    def call_status(form: Form, db: Db, survey: str = "") -> Response:
        status = form.get("CallStatus", "")
        words = CALL_STATUS_WORDS.get(status, status)
        extra = {"Survey": survey} if survey else {}
        text = f"{'回访电话' if survey else '来电'}状态：{words}。"
        if not survey and status in FINAL_CALL_STATUSES:
            leave_queue(db, form, "abandoned")  # the queue's action did not come (the caller is gone all the same)
        store(db, form, "call_status", f"{form['CallSid']}:status:{status}", text, **extra)
        return Response(status_code=204)

    @router.post(Paths.SURVEY)
    def survey_start(form: Form, survey: str, number: str) -> Response:
        return _xml(ivr.survey_solved(survey, number))

    @router.post(Paths.SURVEY_SOLVED)
    def survey_solved(form: Form, db: Db, survey: str, again: int = 0) -> Response:
        solved = solved_of(form.get("Digits", ""), form.get("SpeechResult", ""))
        if solved is None and not again:
            return _xml(ivr.survey_solved(survey, "", again=True))
        if solved is None:
            store(db, form, "survey_answer", f"{form['CallSid']}:survey", "回访未得到答复。", Survey=survey)
            return _xml(ivr.survey_done(answered=False))
        return _xml(ivr.survey_satisfaction(survey, solved))

    @router.post(Paths.SURVEY_SATISFACTION)
    def survey_satisfaction(form: Form, db: Db, survey: str, solved: int, again: int = 0) -> Response:
        satisfaction = satisfaction_of(form.get("Digits", ""), form.get("SpeechResult", ""))
        if satisfaction is None and not again:
            return _xml(ivr.survey_satisfaction(survey, bool(solved), again=True))
        solved_word = "已解决" if solved else "未解决"
        if satisfaction is None:
            text = f"回访结果：{solved_word}，满意度未得到答复。"
            store(db, form, "survey_answer", f"{form['CallSid']}:survey", text, Survey=survey,
                  Solved=str(bool(solved)).lower())
            return _xml(ivr.survey_done(answered=False))
        text = f"回访结果：{solved_word}，{SATISFACTION_WORDS[satisfaction]}。"
        store(db, form, "survey_answer", f"{form['CallSid']}:survey", text, Survey=survey,
              Solved=str(bool(solved)).lower(), Satisfaction=satisfaction)
        return _xml(ivr.survey_done(answered=True))

    return router
