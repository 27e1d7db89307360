"""SMS notices: the ticket number and how to ask for status; nothing of a confidential ticket's content."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hotline.notice_texts import SmsTemplates, TicketNotice

TEMPLATES = SmsTemplates()
NUMBER = "20261122000123"


def test_the_acceptance_sms_gives_the_number_and_how_to_ask_for_the_status() -> None:
    text = TEMPLATES.on_acceptance(TicketNotice(NUMBER, confidential=False, summary="澄江街道工地夜间施工噪音扰民"))
    assert NUMBER in text
    assert "拨打12345按2" in text
    assert "澄江街道工地夜间施工噪音扰民" in text


def test_a_long_summary_is_shortened() -> None:
    text = TEMPLATES.on_acceptance(TicketNotice(NUMBER, confidential=False, summary="噪音" * 100))
    assert text.endswith("…") and "噪音" * 100 not in text


def test_the_reply_sms_names_the_unit_and_the_reply() -> None:
    notice = TicketNotice(NUMBER, confidential=False, unit="明湖区城管局", reply="已责令施工方夜间停工。")
    text = TEMPLATES.on_reply(notice)
    assert NUMBER in text and "明湖区城管局" in text and "已责令施工方夜间停工。" in text


@given(summary=st.text(max_size=80), unit=st.text(max_size=20), reply=st.text(max_size=80))
def test_a_confidential_tickets_notices_do_not_depend_on_its_content(summary: str, unit: str, reply: str) -> None:
    notice = TicketNotice(NUMBER, confidential=True, summary=summary, unit=unit, reply=reply)
    bare = TicketNotice(NUMBER, confidential=True)
    assert TEMPLATES.on_acceptance(notice) == TEMPLATES.on_acceptance(bare)
    assert TEMPLATES.on_reply(notice) == TEMPLATES.on_reply(bare)
    assert TEMPLATES.survey_request(notice) == TEMPLATES.survey_request(bare)


def test_a_confidential_tickets_notices_carry_only_its_number() -> None:
    notice = TicketNotice(NUMBER, confidential=True, summary="举报某小区违建", unit="市城管局", reply="已拆除。")
    acceptance, reply = TEMPLATES.on_acceptance(notice), TEMPLATES.on_reply(notice)
    assert NUMBER in acceptance and NUMBER in reply
    for content in ("举报某小区违建", "市城管局", "已拆除"):
        assert content not in acceptance and content not in reply


def test_the_sms_survey_says_how_to_answer() -> None:
    assert TEMPLATES.survey_request(TicketNotice(NUMBER, confidential=False)) == (
        "【12345热线】请评价工单20261122000123的办理结果：回复1满意，回复2基本满意，回复3不满意。"
    )


def test_a_city_may_reword_the_templates() -> None:
    templates = SmsTemplates(accepted="【明湖12345】工单{number}已受理。")
    text = templates.on_acceptance(TicketNotice(NUMBER, confidential=True, summary="x"))
    assert text == "【明湖12345】工单20261122000123已受理。"


@pytest.mark.parametrize(
    "overrides",
    [{"accepted": "已受理：{summary}"}, {"replied": "{unit}已答复"}, {"survey": "{reply}"},
     {"accepted_detail": "{reply}"}],
)
def test_content_may_be_named_only_in_the_detail_templates(overrides: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="may name only"):
        SmsTemplates(**overrides)
