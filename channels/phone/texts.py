"""SMS notices to the citizen, Chinese per-city templates (``HOTLINE_PHONE_SMS``, JSON).

A text message may be read by anyone holding the phone, so a confidential (保密) ticket's notice carries its number
and nothing else: no summary, no unit, no reply. This is enforced by the templates' shape, not by care: the base
templates may name only ``{number}``, and only the ``*_detail`` templates, never rendered for a confidential
ticket, may name the content fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

SUMMARY_CHARS = 40
REPLY_CHARS = 80


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


class SmsTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accepted: str = "【12345热线】您反映的问题已受理，工单编号{number}。查询办理进度，请拨打12345按2并输入工单编号。"
    accepted_detail: str = "反映内容：{summary}"
    replied: str = "【12345热线】您的工单{number}已办理答复，稍后我们会回访您对办理结果的评价。"
    replied_detail: str = "办理单位：{unit}。答复：{reply}"
    survey: str = "【12345热线】请评价工单{number}的办理结果：回复1满意，回复2基本满意，回复3不满意。"

    BASE_FIELDS: ClassVar[frozenset[str]] = frozenset({"number"})
    DETAIL_FIELDS: ClassVar[dict[str, frozenset[str]]] = {
        "accepted_detail": frozenset({"summary"}),
        "replied_detail": frozenset({"unit", "reply"}),
    }

    @model_validator(mode="after")
    def _only_known_fields(self) -> SmsTemplates:
        for name in ("accepted", "replied", "survey"):
            extra = _fields(getattr(self, name)) - self.BASE_FIELDS
            if extra:
                raise ValueError(f"SMS template {name} may name only {{number}}, not {sorted(extra)}")
        for name, allowed in self.DETAIL_FIELDS.items():
            extra = _fields(getattr(self, name)) - allowed
            if extra:
                raise ValueError(f"SMS template {name} may name only {sorted(allowed)}, not {sorted(extra)}")
        return self

    def on_acceptance(self, ticket: TicketNotice) -> str:
        """The ticket number and how to ask for its status (plus the summary unless confidential)."""
        text = self.accepted.format(number=ticket.number)
        if not ticket.confidential and ticket.summary.strip():
            text += self.accepted_detail.format(summary=_shorten(ticket.summary, SUMMARY_CHARS))
        return text

    def on_reply(self, ticket: TicketNotice) -> str:
        """The unit has replied (plus who and what, unless confidential)."""
        text = self.replied.format(number=ticket.number)
        if not ticket.confidential and ticket.reply.strip():
            reply = _shorten(ticket.reply, REPLY_CHARS)
            text += self.replied_detail.format(unit=ticket.unit or "承办单位", reply=reply)
        return text

    def survey_request(self, ticket: TicketNotice) -> str:
        """The SMS survey ("回复1满意 …"); the reply is read by ``channels.phone.survey.satisfaction_of``."""
        return self.survey.format(number=ticket.number)
