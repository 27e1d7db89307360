"""The Twilio webhooks, driven step by step by a signing Twilio caller, with a throwaway accept()."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from channels.phone.prompts import PhonePrompts
from channels.phone.rest import PhoneRest, make_client
from channels.phone.routes import PhoneMessage, phone_router
from channels.phone.settings import PhoneSettings
from channels.phone.twiml import Paths
from tests.channels.phone.conftest import AUTH_TOKEN, PUBLIC_BASE, phone_settings
from tests.fakes.twilio_api import FakeTwilioApi
from tests.fakes.twilio_caller import TwilioCaller, Twiml

CITIZEN = "+8613812345678"
PROMPTS = PhonePrompts()
DAYTIME = datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
NIGHT = datetime(2026, 3, 10, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


@dataclass
class Accepted:
    inbound_id: int
    duplicate: bool


@dataclass
class Intake:
    """A throwaway accept(): one message per (channel, external_id), like the real one."""

    messages: dict[tuple[str, str], PhoneMessage] = field(default_factory=dict)
    duplicates: int = 0
    statuses: dict[tuple[str, str], str] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def accept(self, session: Session, message: PhoneMessage) -> Accepted:
        key = (message.channel, message.external_id)
        if key in self.messages:
            self.duplicates += 1
            return Accepted(list(self.messages).index(key) + 1, True)
        self.messages[key] = message
        return Accepted(len(self.messages), False)

    def ticket_status(self, session: Session, number: str, caller: str) -> str | None:
        self.asked.append((number, caller))
        return self.statuses.get((number, caller))

    def steps(self) -> list[str]:
        return [m.step for m in self.messages.values()]

    def only(self, step: str) -> PhoneMessage:
        [message] = [m for m in self.messages.values() if m.step == step]
        return message


@dataclass
class Line:
    intake: Intake
    client: TestClient
    settings: PhoneSettings

    def caller(self, from_: str = CITIZEN, direction: str = "inbound", call_sid: str = "") -> TwilioCaller:
        caller = TwilioCaller(self.client, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE, from_=from_,
                              direction=direction)
        if call_sid:
            caller.call_sid = call_sid
        return caller


def make_line(settings: PhoneSettings, now: datetime = DAYTIME) -> Iterator[Line]:
    intake = Intake()
    engine = create_engine("sqlite://")

    def session() -> Iterator[Session]:
        with Session(engine) as db:
            yield db

    app = FastAPI()
    app.include_router(phone_router(settings, accept=intake.accept, session=session,
                                    ticket_status=intake.ticket_status, now=lambda: now))
    # The proxy forwards the public https URL to this internal address: the Host header is not what was signed.
    with TestClient(app, base_url="http://10.0.0.5:8000") as client:
        yield Line(intake, client, settings)
    engine.dispose()


@pytest.fixture
def line(settings: PhoneSettings) -> Iterator[Line]:
    yield from make_line(settings)


def test_describe_a_request_the_transcript_is_accepted_then_the_caller_is_queued(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("1")
    queued = caller.say("澄江街道幸福小区门口的路灯坏了一个星期了", confidence=0.87)

    message = line.intake.only("transcript")
    assert message.channel == "phone" and message.external_id == caller.call_sid
    assert message.text == "澄江街道幸福小区门口的路灯坏了一个星期了"
    assert message.citizen_phone == CITIZEN
    assert message.raw["Confidence"] == "0.87000000" and message.raw["CallSid"] == caller.call_sid
    assert "EmergencyLine" not in message.raw
    assert queued.tags == ["Say", "Enqueue"]
    assert queued.says() == [PROMPTS.describe_received]

    hold = caller.wait_in_queue(seconds=0, position=3)
    assert hold.says() == [PROMPTS.hold[0], "您前面还有2位来电。"]
    assert caller.leave_queue("bridged", 25).tags == []


def test_a_spoken_emergency_is_transferred_to_its_line_and_recorded(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("1")
    transfer = caller.say("我家楼下厨房着火了，浓烟很大")

    assert transfer.one("Number").text == "+8657100119"
    assert transfer.says()[0] == PROMPTS.emergency_detected
    assert line.intake.only("transcript").raw["EmergencyLine"] == "119"

    done = caller.dial_ends("completed")
    assert done.tags == ["Say", "Hangup"]
    transferred = line.intake.only("transfer")
    assert transferred.raw["EmergencyLine"] == "119" and transferred.raw["DialCallStatus"] == "completed"
    assert "已接通" in transferred.text


def test_the_emergency_menu_connects_the_chosen_line(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("9")
    transfer = caller.press("4")

    assert transfer.one("Number").text == "+8657100122"
    assert "幺二二交通事故报警台" in transfer.spoken()
    chosen = line.intake.only("emergency")
    assert chosen.raw["EmergencyLine"] == "122" and chosen.external_id == f"{caller.call_sid}:emergency"


def test_a_failed_transfer_falls_back_to_an_agent(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("9")
    caller.press("3")
    fallback = caller.dial_ends("busy")
    assert fallback.says() == [PROMPTS.transfer_failed] and fallback.find("Enqueue") is not None
    assert "未接通（占线）" in line.intake.only("transfer").text


def test_a_wrong_emergency_key_is_asked_once_more_then_an_agent_takes_over(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("9")
    again = caller.press("7")
    assert again.says()[0] == PROMPTS.menu_invalid and again.find("Gather") is not None
    assert caller.stay_silent().find("Enqueue") is not None
    assert line.intake.messages == {}


def test_status_by_phone_is_told_only_to_the_number_that_filed_the_ticket(line: Line) -> None:
    line.intake.statuses[("20261122000123", CITIZEN)] = "已派往明湖区城管局办理，预计3月13日前答复"
    caller = line.caller()
    caller.dial_in()
    caller.press("2")
    answer = caller.press("20261122000123#")
    assert answer.says()[0] == "工单2 0 2 6 1 1 2 2 0 0 0 1 2 3，已派往明湖区城管局办理，预计3月13日前答复。"

    stranger = line.caller(from_="+8613900000000")
    stranger.dial_in()
    stranger.press("2")
    refused = stranger.press("20261122000123#")
    assert refused.says()[0] == PROMPTS.status_not_found
    assert line.intake.asked == [("20261122000123", CITIZEN), ("20261122000123", "+8613900000000")]
    assert line.intake.messages == {}


def test_a_short_ticket_number_is_not_looked_up(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("2")
    assert caller.press("123#").says()[0] == PROMPTS.status_not_found
    assert line.intake.asked == []


def test_after_the_queue_timeout_the_caller_leaves_a_voicemail_that_is_accepted_with_its_recording(
    line: Line,
) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("0")
    assert caller.wait_in_queue(seconds=60).find("Pause") is not None
    voicemail = caller.wait_in_queue(seconds=line.settings.queue_timeout_seconds)
    assert voicemail.says()[0] == PROMPTS.voicemail and voicemail.find("Record") is not None

    thanks = caller.leave_message(seconds=21)
    assert thanks.says() == [PROMPTS.voicemail_thanks]
    # The Record action (with the caller's number) and the recording status callback name the same recording.
    assert line.intake.duplicates == 1
    message = line.intake.only("voicemail")
    assert message.recording_url.startswith("https://api.twilio.com/2010-04-01/Accounts/")
    assert message.text == "来电人语音留言，时长21秒，请收听录音。"
    assert message.citizen_phone == CITIZEN


def test_a_full_queue_offers_voicemail(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("0")
    assert caller.leave_queue("queue-full").find("Record") is not None


def test_hanging_up_in_the_queue_is_kept_for_a_callback(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("0")
    caller.leave_queue("hangup", 40)
    missed = line.intake.only("queue_hangup")
    assert missed.external_id == f"{caller.call_sid}:queue" and missed.citizen_phone == CITIZEN


def test_call_status_callbacks_are_accepted_once_per_status(line: Line) -> None:
    caller = line.caller()
    assert caller.hang_up("no-answer").status_code == 204
    assert caller.replay().status_code == 204
    [message] = line.intake.messages.values()
    assert message.step == "call_status" and message.raw["CallStatus"] == "no-answer"
    assert message.text == "来电状态：无人接听。"
    assert line.intake.duplicates == 1


def test_the_same_step_replayed_three_times_is_one_message(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("1")
    first = caller.say("小区垃圾三天没人清运")
    for _ in range(3):
        replayed = caller.replay()
        assert replayed.status_code == 200
        again = Twiml.parse(replayed.text)
        assert again.tags == first.tags and again.says() == first.says()
    assert len(line.intake.messages) == 1 and line.intake.duplicates == 3


def test_silence_and_wrong_keys_repeat_the_menu_twice_then_an_agent_answers(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    again = caller.stay_silent()
    assert again.says()[0] == PROMPTS.menu_no_input
    again = caller.press("5")
    assert again.says()[0] == PROMPTS.menu_invalid
    assert caller.press("5").find("Enqueue") is not None


def test_nothing_said_goes_straight_to_an_agent_without_a_message(line: Line) -> None:
    caller = line.caller()
    caller.dial_in()
    caller.press("1")
    queued = caller.stay_silent()
    assert queued.says() == [PROMPTS.describe_not_heard] and queued.find("Enqueue") is not None
    assert line.intake.messages == {}


@pytest.mark.parametrize("path", [Paths.VOICE, Paths.DESCRIBE, Paths.STATUS, Paths.RECORDING, Paths.SURVEY_SOLVED])
def test_a_forged_or_unsigned_webhook_is_refused_and_stores_nothing(line: Line, path: str) -> None:
    caller = line.caller()
    fields = {**caller.call_fields(), "SpeechResult": "燃气泄漏", "RecordingUrl": "https://x", "Digits": "1"}
    url = caller.absolute(path + ("?survey=s-1" if path == Paths.SURVEY_SOLVED else ""))
    assert caller.post(url, fields, signature=None).status_code == 403
    assert caller.post(url, fields, signature=caller.sign(url, {**fields, "Digits": "2"})).status_code == 403
    assert caller.post(url, fields, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    assert line.intake.messages == {}


def test_a_request_signed_for_the_internal_address_is_refused(line: Line) -> None:
    caller = line.caller()
    internal = "http://10.0.0.5:8000" + Paths.VOICE
    fields = caller.call_fields("ringing")
    assert caller.post(internal, fields, signature=caller.sign(internal, fields)).status_code == 403
    assert caller.post(internal, fields).status_code == 403  # "valid" signs the internal URL: still refused


def test_at_night_callers_are_offered_voicemail_instead_of_the_queue() -> None:
    for line in make_line(phone_settings(phone_night_mode="22:00-07:00"), now=NIGHT):
        caller = line.caller()
        caller.dial_in()
        caller.press("1")
        night = caller.say("楼上装修噪音太大")
        assert night.says()[0] == PROMPTS.voicemail_night and night.find("Record") is not None
        assert line.intake.only("transcript").text == "楼上装修噪音太大"


def test_the_survey_call_placed_through_the_fake_asks_and_records_the_answers(
    line: Line, fake_twilio: FakeTwilioApi
) -> None:
    settings = phone_settings(twilio_api_base=fake_twilio.base_url)
    call_sid = PhoneRest(make_client(settings), settings).place_survey_call(
        CITIZEN, "ticket-7-round-1", "20261122000123", key="outbox-5"
    )
    placed = fake_twilio.calls[call_sid]

    citizen = line.caller(call_sid=call_sid, direction="outbound-api")
    citizen.from_, citizen.to = settings.caller_id, CITIZEN
    first = citizen.answer(placed["url"])
    assert "回访" in first.says()[0]
    citizen.press("1")
    done = citizen.say("基本满意吧")
    assert done.says() == [PROMPTS.survey_thanks]

    answer = line.intake.only("survey_answer")
    assert answer.external_id == f"{call_sid}:survey" and answer.citizen_phone == CITIZEN
    assert answer.raw["Survey"] == "ticket-7-round-1"
    assert answer.raw["Solved"] == "true" and answer.raw["Satisfaction"] == "basically_satisfied"
    assert answer.text == "回访结果：已解决，基本满意。"

    status = citizen.hang_up("completed", status_url=placed["status_callback"])
    assert status.status_code == 204
    assert line.intake.only("call_status").raw["Survey"] == "ticket-7-round-1"


def test_a_survey_not_understood_twice_is_recorded_as_unanswered(line: Line) -> None:
    citizen = line.caller(direction="outbound-api")
    citizen.answer(citizen.absolute(Paths.SURVEY + "?survey=s-2&number=20261122000123"))
    again = citizen.say("你们是哪里")
    assert again.says()[0] == PROMPTS.survey_not_heard
    done = citizen.stay_silent()
    assert done.says() == [PROMPTS.survey_no_answer]
    unanswered = line.intake.only("survey_answer")
    assert "Solved" not in unanswered.raw and unanswered.raw["Survey"] == "s-2"


def test_an_unsatisfied_answer_is_recorded_as_such(line: Line) -> None:
    citizen = line.caller(direction="outbound-api")
    citizen.answer(citizen.absolute(Paths.SURVEY + "?survey=s-3&number=20261122000123"))
    citizen.say("没有解决")
    citizen.press("3")
    answer = line.intake.only("survey_answer")
    assert answer.raw["Solved"] == "false" and answer.raw["Satisfaction"] == "unsatisfied"
    assert answer.text == "回访结果：未解决，不满意。"


def test_a_caller_redirected_into_the_three_party_conference_joins_it(line: Line) -> None:
    caller = line.caller()
    joined = caller.answer(caller.absolute(Paths.JOIN_CONFERENCE + "?line=110&room=room-CA9"))
    assert joined.one("Conference").text == "room-CA9"
    assert "幺幺零报警台" in joined.spoken()
