"""The per-board feed of official replies, which forum staff (or a forum plugin) post back under the citizen's thread.

``GET /channels/forum/{board}/replies.json`` and ``.rss`` list the replies waiting to be posted, oldest first:
ticket number, thread link and title, the reply text and the replying unit. RSS 2.0 is built with feedgen (lxml
underneath, so every text is escaped); each item's guid is ``urn:hotline:forum-reply:{reply_id}`` (not a permalink),
its link the citizen's thread, and two categories carry the ticket number (domain ``ticket``) and the unit
(domain ``unit``) for plugins that read feeds.

Once posted, the plugin says so with ``POST /channels/forum/{board}/replies/posted`` and a ``RepliesPosted`` body,
signed like a push (``channels.forum.push``): the replies leave the feed and the ticket records where the reply
went up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from channels.xmlsafe import xml_safe

GUID_PREFIX = "urn:hotline:forum-reply:"
MAX_MARKED = 100


@dataclass(frozen=True)
class OfficialReply:
    """A unit's public reply to a ticket that came from a forum thread."""

    reply_id: int
    ticket_number: str
    thread_link: str
    thread_title: str
    reply_text: str
    unit: str
    replied_at: datetime  # timezone-aware

    def item_title(self) -> str:
        return f"【12345答复·工单{self.ticket_number}】{self.thread_title}"

    def item_text(self) -> str:
        return f"{self.reply_text}\n\n答复单位：{self.unit}\n工单编号：{self.ticket_number}"


def replies_json(board: str, replies: Sequence[OfficialReply]) -> dict[str, Any]:
    """The JSON feed: ``{"board": ..., "replies": [{reply_id, ticket_number, thread_link, ...}, ...]}``."""
    return {
        "board": board,
        "replies": [
            {
                "reply_id": r.reply_id,
                "ticket_number": r.ticket_number,
                "thread_link": r.thread_link,
                "thread_title": r.thread_title,
                "reply": r.reply_text,
                "unit": r.unit,
                "replied_at": r.replied_at.isoformat(),
            }
            for r in replies
        ],
    }


def replies_rss(board_title: str, feed_url: str, board_url: str, replies: Sequence[OfficialReply]) -> bytes:
    """The RSS 2.0 feed (UTF-8 bytes with its XML declaration)."""
    feed = FeedGenerator()
    feed.title(xml_safe(f"{board_title} · 12345热线官方答复"))
    feed.link(href=board_url, rel="alternate")
    feed.link(href=feed_url, rel="self")
    feed.description(xml_safe(f"12345政务服务便民热线对「{board_title}」网友诉求的答复，待论坛转帖"))
    feed.language("zh-CN")
    feed.generator("hotline 12345")
    for reply in replies:
        entry = feed.add_entry(order="append")
        entry.guid(f"{GUID_PREFIX}{reply.reply_id}", permalink=False)
        entry.title(xml_safe(reply.item_title()))
        entry.link(href=reply.thread_link)
        entry.description(xml_safe(reply.item_text()))
        entry.category([{"term": xml_safe(reply.ticket_number), "scheme": "ticket"},
                        {"term": xml_safe(reply.unit), "scheme": "unit"}])
        entry.pubDate(reply.replied_at)
    rss: bytes = feed.rss_str(pretty=True)
    return rss


class PostedReply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reply_id: int = Field(ge=1, le=2**62)
    post_url: HttpUrl | None = None  # where the reply went up on the forum, when the plugin knows it


class RepliesPosted(BaseModel):
    """Forum staff or a plugin marking replies as posted: ``{"posted": [{"reply_id": 7, "post_url": "..."}]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    posted: list[PostedReply] = Field(min_length=1, max_length=MAX_MARKED)
    posted_by: str = Field(default="", max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")
