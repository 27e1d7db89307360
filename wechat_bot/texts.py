"""Every sentence a citizen reads from the city's official account in its passive replies (welcome, guide, status
answers); the notices that follow a ticket's steps are worded by the core (``hotline.notice_texts``).

``Texts`` holds the city's wording with these defaults; a city overrides any of them by constructing ``Texts``
with its own (the fields are plain strings with ``{placeholders}``). The ``texts.format`` functions fill them.
A passive reply is at most 2,048 bytes; every default is far below that, and the status list is cut to fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from hotline.labels import CITIZEN_STATUS_LABELS

REPLY_LIMIT_BYTES = 2048
MAX_LISTED_TICKETS = 5


@dataclass(frozen=True)
class TicketStatus:
    """One of the citizen's own tickets as the status answer shows it."""

    number: str
    status: str  # the status in Chinese, e.g. 已受理 / 办理中 / 已答复 / 已办结
    updated_at: datetime
    summary: str = ""  # a few words of what it is about
    reply: str = ""  # the unit's public reply, when there is one


@dataclass(frozen=True)
class Texts:
    city_line: str = "12345政务服务便民热线"
    welcome: str = (
        "欢迎关注{city_line}！\n"
        "有诉求请直接发消息给我们：文字、语音、图片都可以，发送位置能帮我们更快找到地点。\n"
        "我们受理后会回复您受理编号。\n"
        "查询办理进度：点击菜单“进度查询”，或发送“查询+受理编号”，例如：查询 20260101000123。\n"
        "紧急情况请直接拨打110、119、120。"
    )
    how_to_report: str = (
        "请直接发送您要反映的问题：发生了什么、在什么地方（可发送位置）、从什么时候开始。"
        "可以附上图片或语音。我们受理后会回复您受理编号。"
    )
    guide: str = (
        "办事指南：\n"
        "1. 反映问题：直接发送文字、语音、图片或位置。\n"
        "2. 查询进度：发送“查询+受理编号”，或点击菜单“进度查询”。\n"
        "3. 受理后，承办单位会在规定时限内办理答复，结果会通过本公众号告诉您。\n"
        "4. 也可以拨打12345热线，7×24小时有人接听。"
    )
    received: str = "您的消息已收到，我们正在登记，受理编号稍后发给您。"
    too_many: str = (
        "您发送消息太频繁了，这条消息没有登记。请{minutes}分钟后再发送；紧急情况请拨打12345或110、119、120。"
    )
    status_header: str = "您的诉求办理情况："
    status_line: str = "受理编号 {number}：{status}（{updated}）{summary}"
    status_reply_line: str = "答复：{reply}"
    status_more: str = "另有{count}件未列出，请发送“查询+受理编号”查看。"
    no_tickets: str = "没有查到您通过本公众号提交的诉求。有诉求请直接发消息给我们。"
    not_found: str = (
        "没有查到您名下受理编号为 {number} 的诉求，请核对编号。通过电话等其他渠道提交的诉求，请拨打12345查询。"
    )
    template_remark: str = "详情可在本公众号发送“查询 {number}”查看。"
    unsupported: str = "暂时无法处理这类消息，请发送文字、语音、图片或位置。"
    error: str = "系统繁忙，请稍后再发一次。也可以拨打12345热线。"
    timezone: str = "Asia/Shanghai"


DEFAULT_TEXTS = Texts()

#: a ticket's status as the citizen reads it (its home is hotline.labels)
STATUS_WORDS = CITIZEN_STATUS_LABELS


def welcome(texts: Texts = DEFAULT_TEXTS) -> str:
    return texts.welcome.format(city_line=texts.city_line)


def not_found(number: str, texts: Texts = DEFAULT_TEXTS) -> str:
    return texts.not_found.format(number=number)


def status_answer(tickets: Sequence[TicketStatus], texts: Texts = DEFAULT_TEXTS) -> str:
    """The citizen's tickets, newest first, as many as fit into one reply."""
    if not tickets:
        return texts.no_tickets
    zone = ZoneInfo(texts.timezone)
    ordered = sorted(tickets, key=lambda t: t.updated_at, reverse=True)
    lines = [texts.status_header]
    shown = 0
    for ticket in ordered[:MAX_LISTED_TICKETS]:
        entry = [texts.status_line.format(number=ticket.number, status=ticket.status, summary=ticket.summary,
                                          updated=ticket.updated_at.astimezone(zone).strftime("%m月%d日 %H:%M"))]
        if ticket.reply:
            entry.append(texts.status_reply_line.format(reply=ticket.reply))
        candidate = [*lines, *entry, texts.status_more.format(count=len(ordered))]
        if shown and len("\n".join(candidate).encode("utf-8")) > REPLY_LIMIT_BYTES:
            break
        lines.extend(entry)
        shown += 1
    if shown < len(ordered):
        lines.append(texts.status_more.format(count=len(ordered) - shown))
    return _fit("\n".join(lines))


def _fit(text: str) -> str:
    """Cut a text (a long reply quoted in it) to the passive-reply limit, marking the cut."""
    if len(text.encode("utf-8")) <= REPLY_LIMIT_BYTES:
        return text
    mark = "…"
    room = REPLY_LIMIT_BYTES - len(mark.encode("utf-8"))
    return text.encode("utf-8")[:room].decode("utf-8", errors="ignore") + mark
