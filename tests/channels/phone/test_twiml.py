"""Each IVR step's TwiML, parsed as XML and checked element by element."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest

from channels.phone.prompts import PhonePrompts
from channels.phone.settings import PhoneSettings
from channels.phone.twiml import Ivr, Paths
from tests.channels.phone.conftest import PUBLIC_BASE, phone_settings
from tests.fakes.twilio_caller import Twiml


@pytest.fixture
def ivr(settings: PhoneSettings) -> Ivr:
    return Ivr.from_settings(settings)


def parse(response: object) -> Twiml:
    return Twiml.parse(str(response))


def assert_mandarin(say: ET.Element) -> None:
    assert say.get("voice") == "Polly.Zhiyu"
    assert say.get("language") == "cmn-CN"
    assert say.text


def assert_every_url_is_absolute_on_the_public_base(twiml: Twiml) -> None:
    attributes = ("action", "waitUrl", "statusCallback", "recordingStatusCallback", "url")
    urls = [el.get(a) for el in twiml.root.iter() for a in attributes if el.get(a)]
    urls += [el.text for el in twiml.root.iter("Redirect")]
    for url in urls:
        assert url is not None and url.startswith(PUBLIC_BASE + "/channels/twilio/"), url


def query(url: str | None) -> dict[str, list[str]]:
    assert url is not None
    return parse_qs(urlsplit(url).query)


def test_the_greeting_says_the_hotline_answers_around_the_clock_then_offers_the_menu(ivr: Ivr) -> None:
    twiml = parse(ivr.welcome())
    assert twiml.tags == ["Say", "Gather"]
    greeting, gather = twiml.verbs
    assert_mandarin(greeting)
    assert "12345" in (greeting.text or "") and "24小时" in (greeting.text or "")
    assert gather.get("input") == "dtmf" and gather.get("numDigits") == "1"
    assert gather.get("action") == PUBLIC_BASE + Paths.MENU and gather.get("method") == "POST"
    [menu] = list(gather)
    assert_mandarin(menu)
    for key in ("按1", "按2", "按9", "按0"):
        assert key in (menu.text or "")
    assert_every_url_is_absolute_on_the_public_base(twiml)


def test_a_wrong_key_repeats_the_menu_counting_the_tries(ivr: Ivr) -> None:
    twiml = parse(ivr.menu_again(no_input=False, tries=1))
    assert twiml.says()[0] == PhonePrompts().menu_invalid
    assert query(twiml.one("Gather").get("action")) == {"tries": ["1"]}


def test_describing_the_request_gathers_mandarin_speech(ivr: Ivr) -> None:
    twiml = parse(ivr.describe())
    gather = twiml.one("Gather")
    assert gather.get("input") == "speech"
    assert gather.get("language") == "cmn-Hans-CN"
    assert gather.get("speechTimeout") == "auto"
    assert gather.get("action") == PUBLIC_BASE + Paths.DESCRIBE
    assert gather.get("actionOnEmptyResult") == "true"
    assert_mandarin(gather.find("Say"))  # type: ignore[arg-type]


def test_the_emergency_menu_names_the_four_lines(ivr: Ivr) -> None:
    twiml = parse(ivr.emergency_menu())
    gather = twiml.one("Gather")
    assert gather.get("numDigits") == "1" and gather.get("action") == PUBLIC_BASE + Paths.EMERGENCY
    assert twiml.spoken() == "报警请按1，火警请按2，急救请按3，交通事故请按4。"


def test_an_emergency_transfer_dials_the_configured_number_and_reports_back(ivr: Ivr) -> None:
    twiml = parse(ivr.transfer("119", "+8657100119", detected=True))
    assert twiml.tags == ["Say", "Say", "Dial"]
    assert twiml.says() == ["您反映的情况可能十分紧急。", "正在为您转接幺幺九火警台，请不要挂机。"]
    dial = twiml.one("Dial")
    assert urlsplit(dial.get("action")).path == Paths.TRANSFER_DONE
    assert query(dial.get("action")) == {"line": ["119"]}
    [number] = list(dial)
    assert number.tag == "Number" and number.text == "+8657100119"
    assert_every_url_is_absolute_on_the_public_base(twiml)


def test_the_three_party_call_puts_the_caller_in_a_conference_that_outlives_them(ivr: Ivr) -> None:
    twiml = parse(ivr.three_party("120", "room-CA1"))
    conference = twiml.one("Conference")
    assert twiml.one("Dial").find("Conference") is conference
    assert conference.text == "room-CA1"
    assert conference.get("startConferenceOnEnter") == "true"
    assert conference.get("endConferenceOnExit") == "false"
    assert conference.get("statusCallback") == PUBLIC_BASE + Paths.CONFERENCE
    assert set((conference.get("statusCallbackEvent") or "").split()) == {"start", "end", "join", "leave"}
    assert "幺二零急救中心" in twiml.spoken()


def test_status_by_phone_gathers_the_fourteen_digit_ticket_number(ivr: Ivr) -> None:
    gather = parse(ivr.status_prompt()).one("Gather")
    assert gather.get("input") == "dtmf"
    assert gather.get("numDigits") == "14" and gather.get("finishOnKey") == "#"
    assert gather.get("action") == PUBLIC_BASE + Paths.STATUS_QUERY


def test_the_status_is_said_with_the_number_digit_by_digit(ivr: Ivr) -> None:
    twiml = parse(ivr.status_answer("20261122000123", "已派往市城管局办理"))
    assert twiml.tags == ["Say", "Gather", "Say", "Hangup"]
    assert twiml.says()[0] == "工单2 0 2 6 1 1 2 2 0 0 0 1 2 3，已派往市城管局办理。"
    assert twiml.one("Gather").get("action") == PUBLIC_BASE + Paths.STATUS_MORE


def test_an_unknown_ticket_is_not_confirmed(ivr: Ivr) -> None:
    twiml = parse(ivr.status_answer("20261122000999", None))
    assert twiml.says()[0] == PhonePrompts().status_not_found
    assert "20261122000999" not in twiml.spoken() and "2 0 2 6" not in twiml.spoken()


def test_the_queue_holds_the_caller_with_mandarin_messages_from_its_wait_url(ivr: Ivr) -> None:
    twiml = parse(ivr.queue(PhonePrompts().describe_received))
    assert twiml.tags == ["Say", "Enqueue"]
    enqueue = twiml.one("Enqueue")
    assert enqueue.text == "hotline"
    assert enqueue.get("waitUrl") == PUBLIC_BASE + Paths.HOLD and enqueue.get("waitUrlMethod") == "POST"
    assert enqueue.get("action") == PUBLIC_BASE + Paths.QUEUE_RESULT

    hold = parse(ivr.hold(queue_seconds=0, position=3))
    assert hold.tags == ["Say", "Say", "Pause"]
    assert hold.says() == [PhonePrompts().hold[0], "您前面还有3位来电。"]
    assert_mandarin(hold.verbs[0])
    later = parse(ivr.hold(queue_seconds=8, position=None))
    assert later.says() == [PhonePrompts().hold[1]]


def test_after_the_queue_timeout_the_caller_leaves_the_queue(settings: PhoneSettings) -> None:
    ivr = Ivr.from_settings(phone_settings(queue_timeout_seconds=60))
    assert parse(ivr.hold(queue_seconds=59, position=1)).find("Leave") is None
    assert parse(ivr.hold(queue_seconds=60, position=1)).tags == ["Leave"]


def test_voicemail_records_with_a_recording_status_callback(ivr: Ivr) -> None:
    twiml = parse(ivr.voicemail())
    assert twiml.tags == ["Say", "Record", "Say", "Hangup"]
    record = twiml.one("Record")
    assert record.get("action") == PUBLIC_BASE + Paths.RECORDED
    assert record.get("recordingStatusCallback") == PUBLIC_BASE + Paths.RECORDING
    assert record.get("recordingStatusCallbackEvent") == "completed"
    assert record.get("finishOnKey") == "#" and record.get("playBeep") == "true"
    assert int(record.get("maxLength") or 0) >= 60
    assert parse(ivr.voicemail(night=True)).says()[0].startswith("现在是夜间值守时段")


def test_the_survey_asks_solved_then_satisfaction_by_key_or_voice(ivr: Ivr) -> None:
    first = parse(ivr.survey_solved("s-1", "20261122000123"))
    assert "回访" in first.says()[0]
    gather = first.one("Gather")
    assert gather.get("input") == "dtmf speech" and gather.get("numDigits") == "1"
    assert gather.get("language") == "cmn-Hans-CN"
    assert urlsplit(gather.get("action")).path == Paths.SURVEY_SOLVED
    assert query(gather.get("action")) == {"survey": ["s-1"], "again": ["0"]}
    assert "按1" in first.says()[1] and "按2" in first.says()[1]

    second = parse(ivr.survey_satisfaction("s-1", solved=True))
    gather = second.one("Gather")
    assert gather.get("input") == "dtmf speech"
    assert query(gather.get("action")) == {"survey": ["s-1"], "solved": ["1"], "again": ["0"]}
    assert second.says() == ["您对办理结果是否满意？满意请按1，基本满意请按2，不满意请按3，也可以直接说出来。"]
    assert_every_url_is_absolute_on_the_public_base(first)
    assert_every_url_is_absolute_on_the_public_base(second)


def test_the_survey_calls_url_carries_the_survey_and_the_ticket_number(ivr: Ivr) -> None:
    url = ivr.survey_url("s-1", "20261122000123")
    assert urlsplit(url).path == Paths.SURVEY
    assert query(url) == {"survey": ["s-1"], "number": ["20261122000123"]}


def test_a_city_overrides_prompts_and_voice() -> None:
    prompts = PhonePrompts(greeting="您好，这里是明湖市12345热线。")
    ivr = Ivr.from_settings(phone_settings(phone_prompts=prompts, phone_voice="Polly.Zhiyu-Neural"))
    twiml = parse(ivr.welcome())
    assert twiml.says()[0] == "您好，这里是明湖市12345热线。"
    assert {say.get("voice") for say in twiml.root.iter("Say")} == {"Polly.Zhiyu-Neural"}


def test_prompts_refuse_an_emergency_line_without_a_spoken_name() -> None:
    with pytest.raises(ValueError, match="122"):
        PhonePrompts(emergency_line_names={"110": "幺幺零", "119": "幺幺九", "120": "幺二零"})


def test_a_url_is_built_on_the_configured_base_only() -> None:
    ivr = Ivr(base_url="https://gov.example/hotline/", prompts=PhonePrompts())
    assert ivr.url(Paths.MENU, tries=2) == "https://gov.example/hotline/channels/twilio/voice/menu?tries=2"
    with pytest.raises(ValueError, match="HOTLINE_PUBLIC_BASE_URL"):
        Ivr(base_url="", prompts=PhonePrompts()).url(Paths.MENU)
