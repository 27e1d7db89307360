"""What the citizen reads of a notice (``hotline.notices``), in Chinese, per channel: SMS (``SmsTemplates``, a city
overrides any of them with ``HOTLINE_PHONE_SMS``, JSON) and WeChat (``WeChatTemplates``).

A text message may be read by anyone holding the phone, and a confidential (保密) caller asked that nobody learn
what they reported; so a confidential ticket's notice carries its number and the step, nothing else: no summary,
no unit, no reply. This is enforced by the templates' shape, not by care: the base templates may name only the
ticket numbers and the emergency line, and only the ``*_detail`` templates, never rendered for a confidential
ticket, may name the content fields. The same holds for WeChat.

No notice names a unit's internal dispute: a re-dispatch after a send-back (改派) says that another unit now
handles it, not which unit refused it or why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Formatter
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

SUMMARY_CHARS = 40
REPLY_CHARS = 80
#: what a base template may name: never the ticket's content
BASE_FIELDS = frozenset({"number", "parent_number", "line", "line_digits"})


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name is not None}


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class TicketNotice:
    """What a notice may be about. ``summary``, ``unit`` and ``reply`` are never sent for a confidential ticket."""

    number: str
    confidential: bool
    summary: str = ""
    unit: str = ""
    reply: str = ""
    parent_number: str = ""  # merge: the ticket it now follows
    line: str = ""  # transfer: the emergency line in words, e.g. "119 消防"

    @property
    def line_digits(self) -> str:
        return self.line.split(" ")[0]


class _Templates(BaseModel):
    """Base templates (``number`` and the like only) and their ``*_detail`` additions (content, never for a
    confidential ticket)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    DETAIL_FIELDS: ClassVar[dict[str, frozenset[str]]] = {}
    REPLY_CHARS: ClassVar[int] = REPLY_CHARS

    @model_validator(mode="after")
    def _only_known_fields(self) -> _Templates:
        for name in type(self).model_fields:
            allowed = self.DETAIL_FIELDS.get(name, BASE_FIELDS)
            extra = _fields(getattr(self, name)) - allowed
            if extra:
                raise ValueError(f"template {name} may name only {sorted(allowed)}, not {sorted(extra)}")
        return self

    def _text(self, name: str, notice: TicketNotice) -> str:
        base = getattr(self, name).format(number=notice.number, parent_number=notice.parent_number,
                                          line=notice.line, line_digits=notice.line_digits)
        detail_name = f"{name}_detail"
        if notice.confidential or detail_name not in type(self).model_fields:
            return base
        detail = self._detail(detail_name, notice)
        return base + detail if detail else base

    def _detail(self, name: str, notice: TicketNotice) -> str:
        summary = _shorten(notice.summary, SUMMARY_CHARS)
        reply = _shorten(notice.reply, self.REPLY_CHARS)
        if ("summary" in self.DETAIL_FIELDS[name] and not summary) or ("reply" in self.DETAIL_FIELDS[name]
                                                                     and not reply):
            return ""
        return str(getattr(self, name)).format(summary=summary, reply=reply, unit=notice.unit or "承办单位")

    def text(self, kind: str, notice: TicketNotice) -> str | None:
        """The notice whose template is named ``kind`` (``hotline.notices.TEMPLATE_NAMES``), or None when this
        channel says nothing of it."""
        return self._text(kind, notice) if kind in type(self).model_fields else None


class SmsTemplates(_Templates):
    accepted: str = "【12345热线】您反映的问题已受理，工单编号{number}。查询办理进度，请拨打12345按2并输入工单编号。"
    accepted_detail: str = "反映内容：{summary}"
    answered: str = "【12345热线】您的工单{number}已直接答复办结。"
    answered_detail: str = "答复：{reply}"
    replied: str = "【12345热线】您的工单{number}已办理答复，稍后我们会回访您对办理结果的评价。"
    replied_detail: str = "办理单位：{unit}。答复：{reply}"
    closed: str = "【12345热线】您的工单{number}已办结归档，感谢您的支持。"
    merged: str = "【12345热线】您反映的问题已与受理编号 {parent_number} 合并办理，办理结果将一并答复您。"
    transferred: str = "【12345热线】您反映的紧急情况（工单{number}）已转交{line}处置。危急时请直接拨打{line_digits}。"
    reassigned: str = "【12345热线】您的工单{number}已转交相关承办单位继续办理，办理时限重新计算。"
    survey: str = "【12345热线】请评价工单{number}的办理结果：回复1满意，回复2基本满意，回复3不满意。"

    DETAIL_FIELDS: ClassVar[dict[str, frozenset[str]]] = {
        "accepted_detail": frozenset({"summary"}),
        "answered_detail": frozenset({"reply"}),
        "replied_detail": frozenset({"unit", "reply"}),
    }

    def on_acceptance(self, ticket: TicketNotice) -> str:
        """The ticket number and how to ask for its status (plus the summary unless confidential)."""
        return self._text("accepted", ticket)

    def on_reply(self, ticket: TicketNotice) -> str:
        """The unit has replied (plus who and what, unless confidential)."""
        return self._text("replied", ticket)

    def survey_request(self, ticket: TicketNotice) -> str:
        """The SMS survey ("回复1满意 …"); the reply is read by ``channels.phone.survey.satisfaction_of``."""
        return self.survey.format(number=ticket.number)


class WeChatTemplates(_Templates):
    """The official account's customer-service messages (the citizen's own chat, within 48 hours)."""

    accepted: str = (
        "您反映的问题已受理，受理编号：{number}。办理结果会通过本公众号告诉您，也可发送“查询 {number}”查看进度。"
    )
    joined: str = "您刚才补充的内容已并入受理编号 {number} 的诉求。"
    answered: str = "您咨询的问题已登记，受理编号：{number}。"
    answered_detail: str = "答复如下：{reply}\n如仍有疑问，请直接回复说明，或拨打12345热线。"
    replied: str = "您反映的问题（受理编号 {number}）已有办理结果。"
    replied_detail: str = "答复：{reply}"
    closed: str = "您反映的问题（受理编号 {number}）已办结。感谢您对我们工作的支持。"
    merged: str = "您反映的问题已与受理编号 {parent_number} 合并办理，办理结果将一并告诉您。"
    transferred: str = "您反映的紧急情况（受理编号 {number}）已转交{line}处置。情况危急请直接拨打{line_digits}。"
    reassigned: str = "您反映的问题（受理编号 {number}）已转交相关承办单位继续办理。"

    DETAIL_FIELDS: ClassVar[dict[str, frozenset[str]]] = {
        "answered_detail": frozenset({"reply"}),
        "replied_detail": frozenset({"reply"}),
    }
    REPLY_CHARS: ClassVar[int] = 600  # a customer-service text may be 2,048 bytes: the whole article fits


@dataclass(frozen=True)
class NoticeTexts:
    """Every channel's wording, as the city configured it."""

    sms: SmsTemplates = field(default_factory=SmsTemplates)
    wechat: WeChatTemplates = field(default_factory=WeChatTemplates)


DEFAULT_TEXTS = NoticeTexts()
