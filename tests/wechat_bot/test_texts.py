"""The citizen's texts: complete, filled in, and never longer than a passive reply may be."""

from __future__ import annotations

import dataclasses
import string
from datetime import UTC, datetime, timedelta

from wechat_bot import texts as say
from wechat_bot.texts import REPLY_LIMIT_BYTES, Texts, TicketStatus


def test_every_text_is_chinese_and_fits_a_reply() -> None:
    for f in dataclasses.fields(Texts):
        value = getattr(say.DEFAULT_TEXTS, f.name)
        if f.name == "timezone":
            continue
        assert any("\u4e00" <= ch <= "\u9fff" for ch in value), f.name
        assert len(value.encode()) < REPLY_LIMIT_BYTES // 2, f.name
        placeholders = {name for _, name, _, _ in string.Formatter().parse(value) if name}
        allowed = {"number", "reply", "status", "updated", "summary", "count", "city_line", "minutes"}
        assert placeholders <= allowed, f.name


def test_a_city_overrides_its_wording() -> None:
    city = Texts(city_line="明湖12345", received="收到，马上登记。")
    assert say.welcome(city).startswith("欢迎关注明湖12345")
    assert city.received == "收到，马上登记。"


def test_the_status_answer_lists_the_newest_first_and_fits_one_reply() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    many = [TicketStatus(f"2026010100{i:04d}", "办理中", start + timedelta(hours=i), summary="路灯不亮",
                         reply="已安排维修" * 10) for i in range(12)]
    answer = say.status_answer(many)
    assert len(answer.encode()) <= REPLY_LIMIT_BYTES
    assert answer.index("20260101000011") < answer.index("20260101000010")
    assert "未列出" in answer


def test_no_tickets_and_a_long_reply_are_handled() -> None:
    assert say.status_answer([]) == say.DEFAULT_TEXTS.no_tickets
    huge = TicketStatus("20260101000001", "已答复", datetime(2026, 1, 1, tzinfo=UTC), reply="很" * 3000)
    answer = say.status_answer([huge])
    assert len(answer.encode()) <= REPLY_LIMIT_BYTES and answer.endswith("…")
