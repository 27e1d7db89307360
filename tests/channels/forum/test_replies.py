"""The reply feed, in JSON and RSS 2.0, carries ticket number, thread link, reply and unit, escaped safely."""

from __future__ import annotations

from datetime import UTC, datetime

import feedparser
import pytest
from pydantic import ValidationError

from channels.forum.replies import OfficialReply, RepliesPosted, replies_json, replies_rss

REPLY = OfficialReply(
    reply_id=7,
    ticket_number="20250303-000123",
    thread_link="http://bbs.example.cn/forum.php?mod=viewthread&tid=123",
    thread_title="小区夜间施工噪音扰民 <script>",
    reply_text="经核查，该工地已停止夜间施工 & 已处罚。\x00",
    unit="区城市管理局",
    replied_at=datetime(2025, 3, 4, 9, 30, tzinfo=UTC),
)


def test_the_json_feed_lists_each_reply_with_ticket_thread_reply_and_unit() -> None:
    assert replies_json("wenzheng", [REPLY]) == {
        "board": "wenzheng",
        "replies": [{
            "reply_id": 7,
            "ticket_number": "20250303-000123",
            "thread_link": "http://bbs.example.cn/forum.php?mod=viewthread&tid=123",
            "thread_title": "小区夜间施工噪音扰民 <script>",
            "reply": "经核查，该工地已停止夜间施工 & 已处罚。\x00",
            "unit": "区城市管理局",
            "replied_at": "2025-03-04T09:30:00+00:00",
        }],
    }


def test_the_rss_feed_is_valid_rss_2_with_everything_escaped() -> None:
    rss = replies_rss("网络问政", "http://hotline/channels/forum/wenzheng/replies.rss", "http://bbs.example.cn/",
                      [REPLY])
    assert rss.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    parsed = feedparser.parse(rss)
    assert parsed.version == "rss20" and not parsed.bozo
    assert parsed.feed.title == "网络问政 · 12345热线官方答复"
    (item,) = parsed.entries
    assert item.id == "urn:hotline:forum-reply:7"
    assert item.link == REPLY.thread_link
    assert item.title == "【12345答复·工单20250303-000123】小区夜间施工噪音扰民 <script>"
    assert "经核查，该工地已停止夜间施工 & 已处罚。" in item.summary
    assert "答复单位：区城市管理局" in item.summary
    assert {(t.term, t.scheme) for t in item.tags} == {("20250303-000123", "ticket"), ("区城市管理局", "unit")}
    assert item.published_parsed[:5] == (2025, 3, 4, 9, 30)
    assert b"<script>" not in rss


def test_an_empty_feed_is_still_a_valid_feed() -> None:
    parsed = feedparser.parse(replies_rss("网络问政", "http://h/r.rss", "http://bbs/", []))
    assert parsed.version == "rss20" and parsed.entries == []


def test_forum_staff_mark_replies_as_posted_with_ids_and_where_they_went_up() -> None:
    marked = RepliesPosted.model_validate_json(
        b'{"posted": [{"reply_id": 7, "post_url": "http://bbs.example.cn/forum.php?mod=redirect&pid=9"},'
        b' {"reply_id": 8}], "posted_by": "admin"}')
    assert [(p.reply_id, p.post_url is not None) for p in marked.posted] == [(7, True), (8, False)]


@pytest.mark.parametrize("raw", [b'{"posted": []}', b'{"posted": [{"reply_id": 0}]}',
                                 b'{"posted": [{"reply_id": 7, "extra": 1}]}',
                                 b'{"posted": [{"reply_id": 7, "post_url": "ftp://x"}]}',
                                 b'{"posted": [' + b",".join([b'{"reply_id": 1}'] * 101) + b"]}",
                                 b'{"posted": [{"reply_id": 7}], "posted_by": "a\\u0000"}'])
def test_invalid_marks_are_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        RepliesPosted.model_validate_json(raw)
