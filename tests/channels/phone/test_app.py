"""The phone channel in the running app: Twilio (the signing caller) drives the real signed routes of
``create_app``, the worker's phone handler turns each stored step into tickets and events, and the outbox sends
SMS and survey calls to the fake Twilio REST API through the real client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from channels.phone.outbound import SURVEY_CALL, make_sender
from channels.phone.prompts import PhonePrompts
from channels.phone.twiml import Paths
from hotline import attachments, inbound, notices, outbox, workflow
from hotline.db import make_engine, make_sessionmaker, transaction
from hotline.events import LocalBus
from hotline.models import Citizen, InboundMessage, OutboxMessage, Status, Ticket, TicketAttachment, TicketEvent
from hotline.services import Services
from hotline.settings import Settings
from hotline.suggestion import NullSuggester
from hotline.timing import Timing
from hotline.worker import channel_fetchers, channel_handlers, channel_senders, process_inbound_once
from routing.calendar import WorkCalendar
from tests.channels.phone.conftest import AUTH_TOKEN, PUBLIC_BASE, phone_settings
from tests.conftest import City, actor
from tests.fakes.twilio_api import FakeTwilioApi
from tests.fakes.twilio_caller import TwilioCaller, Twiml

CITIZEN = "+8613812345678"
NATIONAL = "13812345678"  # how the citizen is kept (and addressed by the notices; the sender dials E.164)
PROMPTS = PhonePrompts()
CITY = ZoneInfo("Asia/Shanghai")
# Survey tests run the worker at fixed moments after every message arrived (so each is due): a Tuesday to come.
TUESDAY_10 = datetime(2030, 3, 12, 10, 0, tzinfo=CITY)


@pytest.fixture
def services(db_url: str, tmp_path: Path, fake_twilio: FakeTwilioApi) -> Iterator[Services]:
    settings = Settings(demo=True, database_url=db_url, redis_url=None, model_dir=tmp_path / "no-model",
                        embedded_worker=False, phone=phone_settings(twilio_api_base=fake_twilio.base_url))
    engine = make_engine(settings.database_url)
    bus = LocalBus()
    sessions = make_sessionmaker(engine, bus.publish)
    yield Services(settings=settings, engine=engine, sessions=sessions, bus=bus,
                   timing=Timing(WorkCalendar(tz=settings.city_timezone)), suggester=NullSuggester())
    engine.dispose()


def caller(client: TestClient, from_: str = CITIZEN, account_sid: str | None = None) -> TwilioCaller:
    call = TwilioCaller(client, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE, from_=from_)
    if account_sid is not None:  # the account whose recordings the fake Twilio serves
        call.account_sid = account_sid
    return call


def process(services: Services, now: datetime | None = None) -> inbound.ProcessReport:
    if now is None:
        return process_inbound_once(services)
    return inbound.process_pending(services.sessions, services.suggester, services.timing, now=now,
                                   handlers=channel_handlers(services))


def tickets(services: Services) -> list[Ticket]:
    with services.sessions() as s:
        return list(s.scalars(select(Ticket).order_by(Ticket.id)))


def events(services: Services, ticket_id: int, type_: str | None = None) -> list[TicketEvent]:
    with services.sessions() as s:
        stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        if type_:
            stmt = stmt.where(TicketEvent.type == type_)
        return list(s.scalars(stmt))


def sms_rows(services: Services) -> list[OutboxMessage]:
    """The citizen's notices by SMS (``hotline.notices``): every outbox row of the phone channel but survey calls."""
    return [row for row in outbox_rows(services) if row.channel == "phone" and row.kind != SURVEY_CALL]


def outbox_rows(services: Services, kind: str | None = None) -> list[OutboxMessage]:
    with services.sessions() as s:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind:
            stmt = stmt.where(OutboxMessage.kind == kind)
        return list(s.scalars(stmt))


def test_a_described_request_becomes_a_draft_ticket_with_an_acceptance_sms(
    client: TestClient, services: Services
) -> None:
    call = caller(client)
    call.dial_in()
    call.press("1")
    queued = call.say("澄江街道幸福小区门口的路灯坏了一个星期了", confidence=0.87)
    assert queued.tags == ["Say", "Enqueue"]

    assert process(services).created == 1
    [ticket] = tickets(services)
    assert ticket.channel == "phone" and ticket.text == "澄江街道幸福小区门口的路灯坏了一个星期了"
    assert ticket.status == Status.received and ticket.lead_unit_id is None  # a draft: the agent confirms it
    [receive] = events(services, ticket.id, "receive")
    assert receive.data["call_sid"] == call.call_sid and receive.data["draft"] is True
    assert receive.data["speech_confidence"] == "0.87000000"
    with services.sessions() as s:
        assert s.get(Ticket, ticket.id) is not None
        assert ticket.citizen_id is not None
    [sms] = sms_rows(services)
    assert (sms.kind, sms.recipient, sms.ticket_id) == (notices.RECEIVED, NATIONAL, ticket.id)
    assert ticket.number in sms.payload["text"] and "按2" in sms.payload["text"]


def test_the_acceptance_sms_reaches_twilio_once_with_the_outbox_key_as_idempotency_token(
    client: TestClient, services: Services, fake_twilio: FakeTwilioApi
) -> None:
    call = caller(client)
    call.dial_in()
    call.press("1")
    call.say("小区垃圾三天没人清运")
    process(services)
    [row] = sms_rows(services)

    fake_twilio.lose_next_responses(1)  # Twilio sends it, but its answer is lost on the way back
    first = outbox.send_pending(services.sessions, channel_senders(services))
    assert first.retried == 1
    later = datetime.now(UTC) + timedelta(hours=1)
    again = outbox.send_pending(services.sessions, channel_senders(services), now=later)
    assert again.sent == 1

    requests = fake_twilio.requests_to("Messages.json")
    assert [r.idempotency_token for r in requests] == [row.idempotency_key, row.idempotency_key]
    assert len(fake_twilio.messages) == 1
    [message] = fake_twilio.messages.values()
    assert message["to"] == CITIZEN and message["from"] == "+8657112345"
    [sent] = sms_rows(services)
    assert sent.state == outbox.SENT and sent.provider_id == message["sid"]


def test_a_confidential_phone_ticket_gets_only_its_number_by_sms(services: Services, city: City) -> None:
    with transaction(services.sessions) as s:
        citizen = Citizen(phone=NATIONAL)
        s.add(citizen)
        s.flush()
        ticket = Ticket(number="20260310000001", channel="phone", text="举报某单位领导违规收受礼金", confidential=True,
                        status=Status.received, citizen_id=citizen.id)
        s.add(ticket)
        s.flush()
        assert notices.notify(s, ticket, notices.RECEIVED, cause="inbound1")
    [sms] = sms_rows(services)
    assert "20260310000001" in sms.payload["text"]
    assert "礼金" not in sms.payload["text"] and "举报" not in sms.payload["text"]


def test_the_same_step_replayed_three_times_is_one_ticket(client: TestClient, services: Services) -> None:
    call = caller(client)
    call.dial_in()
    call.press("1")
    first = call.say("楼上装修噪音太大，晚上十点还在施工")
    for _ in range(3):
        replayed = call.replay()
        assert replayed.status_code == 200 and Twiml.parse(replayed.text).tags == first.tags
    process(services)
    process(services)
    assert len(tickets(services)) == 1
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 1
    assert len(sms_rows(services)) == 1


def test_a_spoken_emergency_is_dialled_and_its_ticket_is_urgent_and_transferred(
    client: TestClient, services: Services
) -> None:
    call = caller(client)
    call.dial_in()
    call.press("1")
    transfer = call.say("我家楼下厨房着火了，浓烟很大")
    assert transfer.one("Dial").find("Number") is not None
    assert transfer.one("Number").text == "+8657100119"

    process(services)
    [ticket] = tickets(services)
    assert ticket.urgent and ticket.status == Status.transferred and ticket.emergency_line == "119"
    [moved] = events(services, ticket.id, "transfer")
    assert moved.data["line"] == "119" and moved.actor_name == "系统"
    [sms] = sms_rows(services)  # the emergency centre has the case: the caller's SMS says so, with the number
    assert sms.kind == notices.TRANSFERRED and "119" in sms.payload["text"] and ticket.number in sms.payload["text"]

    call.dial_ends("completed", duration=95)
    process(services)
    [dialled] = events(services, ticket.id, "call")
    assert dialled.data["connected"] is True and dialled.data["line"] == "119"
    assert "已接通" in dialled.note


def test_the_emergency_menu_transfers_to_the_chosen_line(client: TestClient, services: Services) -> None:
    call = caller(client)
    call.dial_in()
    call.press("9")
    transfer = call.press("4")
    assert transfer.one("Number").text == "+8657100122"
    process(services)
    [ticket] = tickets(services)
    assert ticket.urgent and ticket.status == Status.transferred and ticket.emergency_line == "122"
    assert [e.data["line"] for e in events(services, ticket.id, "transfer")] == ["122"]


def test_the_three_party_leg_joins_a_conference_and_its_events_land_on_the_ticket(
    client: TestClient, services: Services
) -> None:
    call = caller(client)
    call.dial_in()
    call.press("9")
    call.press("1")
    process(services)
    [ticket] = tickets(services)
    room = f"room-{call.call_sid}"
    joined = call.answer(call.absolute(f"{Paths.JOIN_CONFERENCE}?line=110&room={room}"))
    conference = joined.one("Conference")
    assert conference.text == room and conference.get("statusCallback") == PUBLIC_BASE + Paths.CONFERENCE
    fields = {"AccountSid": call.account_sid, "CallSid": call.call_sid, "ConferenceSid": "CF" + "1" * 32,
              "FriendlyName": room, "StatusCallbackEvent": "participant-join", "SequenceNumber": "1"}
    assert call.post(conference.get("statusCallback") or "", fields).status_code == 204
    process(services)
    [joined_event] = events(services, ticket.id, "call")
    assert joined_event.data["event"] == "participant-join" and joined_event.data["conference"] == room


def test_a_voicemail_becomes_a_ticket_with_the_recording_attached(client: TestClient, services: Services) -> None:
    call = caller(client)
    call.dial_in()
    call.press("0")
    record = call.wait_in_queue(seconds=services.settings.phone.queue_timeout_seconds)
    assert record.find("Record") is not None
    call.leave_message(seconds=21)  # the Record action and the recording callback: one message

    process(services)
    [ticket] = tickets(services)
    [receive] = events(services, ticket.id, "receive")
    [recording] = receive.data["attachments"]
    assert recording["kind"] == "recording" and recording["url"].startswith("https://api.twilio.com/")
    [voicemail] = events(services, ticket.id, "voicemail")
    assert voicemail.data["duration_seconds"] == "21" and voicemail.data["attachments"] == [recording]
    assert len(sms_rows(services)) == 1


def test_missed_calls_of_one_caller_in_a_day_are_one_callback_task_in_the_agents_queue(
    client: TestClient, services: Services, city: City
) -> None:
    first = caller(client)
    assert first.hang_up("no-answer").status_code == 204
    second = caller(client)
    second.dial_in()
    second.press("0")
    second.leave_queue("hangup", 40)
    assert caller(client).hang_up("busy").status_code == 204
    other = caller(client, from_="+8613900001111")
    other.hang_up("canceled")
    process(services)

    tasks = tickets(services)
    assert len(tasks) == 2
    [mine] = [t for t in tasks if len(events(services, t.id, "missed_call")) == 3]
    missed = events(services, mine.id, "missed_call")
    assert [e.data["reason"] for e in missed] == ["无人接听", "排队等候时挂断", "占线"]
    assert mine.title == "未接来电回拨" and mine.kind == "help" and mine.status == Status.received

    queue = client.get("/api/desk/callbacks", headers=city.headers("agent")).json()
    listed = {item["id"]: item for item in queue["items"]}
    assert set(listed) == {t.id for t in tasks}
    assert listed[mine.id]["citizen"]["phone"] == "13812345678"


def test_a_caller_who_described_the_request_then_hung_up_is_called_back_about_that_ticket(
    client: TestClient, services: Services, city: City
) -> None:
    call = caller(client)
    call.dial_in()
    call.press("1")
    call.say("我家自来水发黄已经两天了")
    call.leave_queue("hangup", 75)
    process(services)
    [ticket] = tickets(services)
    assert [e.data["reason"] for e in events(services, ticket.id, "missed_call")] == ["排队等候时挂断"]
    queue = client.get("/api/desk/callbacks", headers=city.headers("agent")).json()
    assert [item["id"] for item in queue["items"]] == [ticket.id]


def test_status_by_phone_is_told_only_to_the_number_that_filed_the_ticket(
    client: TestClient, services: Services
) -> None:
    call = caller(client)
    call.dial_in()
    call.press("1")
    call.say("人行道上的井盖丢了，很危险")
    process(services)
    [ticket] = tickets(services)

    again = caller(client)
    again.dial_in()
    again.press("2")
    answer = again.press(ticket.number + "#")
    assert answer.says()[0].startswith("工单" + " ".join(ticket.number) + "，已受理")

    stranger = caller(client, from_="+8613900000000")
    stranger.dial_in()
    stranger.press("2")
    assert stranger.press(ticket.number + "#").says()[0] == PROMPTS.status_not_found


@pytest.mark.parametrize("path", [Paths.VOICE, Paths.DESCRIBE, Paths.STATUS, Paths.RECORDED, Paths.QUEUE_RESULT])
def test_a_forged_or_unsigned_webhook_is_refused_and_stores_nothing(
    client: TestClient, services: Services, path: str
) -> None:
    call = caller(client)
    fields = {**call.call_fields(), "SpeechResult": "燃气泄漏", "RecordingUrl": "https://x", "RecordingDuration": "9",
              "QueueResult": "hangup", "CallStatus": "no-answer"}
    url = call.absolute(path)
    assert call.post(url, fields, signature=None).status_code == 403
    assert call.post(url, fields, signature=call.sign(url, {**fields, "From": "+8613900000000"})).status_code == 403
    forged = TwilioCaller(client, auth_token="not-the-token", public_base_url=PUBLIC_BASE)
    assert forged.post(url, fields).status_code == 403
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 0


# -- the survey call (回访) ----------------------------------------------------------------------------------------


def replied_phone_ticket(client: TestClient, services: Services, city: City, at: datetime) -> Ticket:
    """A ticket filed by phone, dispatched, signed and replied to by the unit at ``at``."""
    call = caller(client)
    call.dial_in()
    call.press("1")
    call.say("建设路有人占道经营，摊位堵住了人行道")
    process(services)
    [ticket] = tickets(services)
    agent, unit = actor(services, city, "agent"), actor(services, city, "cgj")
    with transaction(services.sessions) as s:
        workflow.perform(s, ticket.id, "dispatch", agent, workflow.DispatchInput(unit_id=city.ids["unit:cgj"]),
                         services.timing, now=at - timedelta(hours=1))
        workflow.perform(s, ticket.id, "sign", unit, workflow.ActionInput(),
                         services.timing, now=at - timedelta(minutes=50))
        workflow.perform(s, ticket.id, "reply", unit,
                         workflow.ReplyInput(note="已清理占道摊位，并安排城管队员每日巡查。"), services.timing, now=at)
    with services.sessions() as s:
        found = s.get(Ticket, ticket.id)
        assert found is not None
        return found


def test_a_voicemail_recording_is_fetched_from_twilio_into_the_attachment_store(
    client: TestClient, services: Services, fake_twilio: FakeTwilioApi
) -> None:
    call = caller(client, account_sid=fake_twilio.account_sid)
    call.dial_in()
    call.press("0")
    call.wait_in_queue(seconds=services.settings.phone.queue_timeout_seconds)
    call.leave_message(seconds=12)
    process(services)
    [ticket] = tickets(services)
    [receive] = events(services, ticket.id, "receive")
    recording_sid = receive.data["attachments"][0]["url"].rsplit("/", 1)[1]
    mp3 = b"ID3\x04" + b"\xff\xfb" * 3000
    fake_twilio.recordings[recording_sid] = mp3

    report = attachments.fetch_pending(services.sessions, channel_fetchers(services),
                                       limits=services.settings.attachment_max_bytes)
    with services.sessions() as s:
        [row] = s.scalars(select(TicketAttachment))
        assert report.stored == 1, (row.reason, row.last_error)
        assert (row.ticket_id, row.kind, row.state) == (ticket.id, "recording", "stored")
        assert row.content_type == "audio/mpeg"
        assert row.content == mp3 and row.sha256 == hashlib.sha256(mp3).hexdigest()
    [download] = fake_twilio.requests_to(f"{recording_sid}.mp3")
    assert download.username == fake_twilio.account_sid


def test_a_deleted_recording_is_refused_with_its_reason(
    client: TestClient, services: Services, fake_twilio: FakeTwilioApi
) -> None:
    call = caller(client, account_sid=fake_twilio.account_sid)
    call.dial_in()
    call.press("0")
    call.wait_in_queue(seconds=services.settings.phone.queue_timeout_seconds)
    call.leave_message(seconds=12)
    process(services)
    report = attachments.fetch_pending(services.sessions, channel_fetchers(services))
    assert report.refused == 1
    with services.sessions() as s:
        [row] = s.scalars(select(TicketAttachment))
        assert row.state == "refused" and row.reason == "Twilio 未提供该录音（HTTP 404），未能获取"


def test_a_unit_reply_queues_the_survey_call_which_records_the_answers_through_the_workflow(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    ticket = replied_phone_ticket(client, services, city, TUESDAY_10)
    [survey] = outbox_rows(services, SURVEY_CALL)
    assert survey.recipient == CITIZEN and survey.next_attempt_at == TUESDAY_10
    assert any(r.kind == notices.REPLIED and r.payload["text"].startswith("【12345热线】您的工单")
               for r in sms_rows(services))

    sender = make_sender(services.settings.phone, clock=lambda: TUESDAY_10 + timedelta(minutes=1))
    report = outbox.send_pending(services.sessions, {"phone": sender}, now=TUESDAY_10 + timedelta(minutes=1))
    assert report.sent == 3  # the acceptance SMS, the reply SMS and the survey call
    [request] = fake_twilio.requests_to("Calls.json")
    assert request.idempotency_token == survey.idempotency_key and request.field("To") == CITIZEN
    [placed] = fake_twilio.calls.values()

    citizen = TwilioCaller(client, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE, from_="+8657112345",
                           to=CITIZEN, direction="outbound-api", call_sid=placed["sid"])
    first = citizen.answer(placed["url"])
    assert ticket.number[:4] in first.spoken().replace(" ", "")
    citizen.press("1")
    assert citizen.press("2").says() == [PROMPTS.survey_thanks]
    process(services, now=TUESDAY_10 + timedelta(minutes=3))

    with services.sessions() as s:
        done = s.get(Ticket, ticket.id)
        assert done is not None
        assert done.solved is True and done.satisfaction == "basically_satisfied" and done.status == Status.closed
    [callback] = events(services, ticket.id, "callback")
    assert callback.actor_name == "系统" and callback.data == {"satisfaction": "basically_satisfied", "solved": True}


def test_an_unanswered_survey_call_is_tried_again_by_policy_then_left_to_the_agents(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    ticket = replied_phone_ticket(client, services, city, TUESDAY_10)
    moment = TUESDAY_10
    for attempt in (1, 2, 3):
        due = min(r.next_attempt_at for r in outbox_rows(services, SURVEY_CALL) if r.state == outbox.PENDING)
        moment = max(moment, due)
        sender = make_sender(services.settings.phone, clock=lambda m=moment: m)
        outbox.send_pending(services.sessions, {"phone": sender}, now=moment)
        placed = list(fake_twilio.calls.values())[-1]
        citizen = TwilioCaller(client, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE, from_="+8657112345",
                               to=CITIZEN, direction="outbound-api", call_sid=placed["sid"])
        assert citizen.hang_up("no-answer", status_url=placed["status_callback"]).status_code == 204
        process(services, now=moment + timedelta(minutes=1))
        assert len(fake_twilio.calls) == attempt

    surveys = outbox_rows(services, SURVEY_CALL)
    assert len(surveys) == 3
    gaps = [b.next_attempt_at - a.next_attempt_at for a, b in pairwise(surveys)]
    assert all(gap >= timedelta(hours=2) for gap in gaps)
    notes = [e.note for e in events(services, ticket.id, "survey_call")]
    assert notes[0].startswith("自动回访电话第1次未接通（无人接听），将于") and notes[-1].endswith("转人工回访。")
    assert events(services, ticket.id, "survey_call")[-1].data["to_agents"] is True
    queue = client.get("/api/desk/callbacks", headers=city.headers("agent")).json()
    assert [item["id"] for item in queue["items"]] == [ticket.id]


def test_a_survey_call_is_never_placed_outside_calling_hours(
    client: TestClient, services: Services, city: City, fake_twilio: FakeTwilioApi
) -> None:
    evening = datetime(2030, 3, 12, 20, 30, tzinfo=CITY)
    replied_phone_ticket(client, services, city, evening)
    [survey] = outbox_rows(services, SURVEY_CALL)
    tomorrow_9 = datetime(2030, 3, 13, 9, 0, tzinfo=CITY)
    assert survey.next_attempt_at == tomorrow_9

    # Even if a retry slid into the night, the sender puts it back to the next calling period, uncounted.
    late = datetime(2030, 3, 13, 22, 0, tzinfo=CITY)
    sender = make_sender(services.settings.phone, clock=lambda: late)
    outbox.send_pending(services.sessions, {"phone": sender}, now=late)
    assert fake_twilio.requests_to("Calls.json") == []
    [postponed] = outbox_rows(services, SURVEY_CALL)
    assert postponed.state == outbox.PENDING and postponed.attempts == 0
    assert postponed.next_attempt_at == datetime(2030, 3, 14, 9, 0, tzinfo=CITY)


def test_the_simulator_makes_a_signed_call_that_becomes_a_ticket(client: TestClient, services: Services) -> None:
    from channels.phone.simulate import SimulatedCall

    heard: list[str] = []
    SimulatedCall(services.settings.phone, CITIZEN, client, say_line=heard.append).run(
        "1", "学校门口的红绿灯不亮了", hang_up_in_queue=True)
    assert f"  «{PROMPTS.describe_received}»" in heard
    process(services)
    [ticket] = tickets(services)
    assert ticket.text == "学校门口的红绿灯不亮了"
    assert [e.data["reason"] for e in events(services, ticket.id, "missed_call")] == ["排队等候时挂断"]
    assert events(services, ticket.id, "call")[-1].data["status"] == "completed"
