"""The phone channel's two functions into the core, as ``phone_router`` takes them.

- ``accept``: a webhook step (``PhoneMessage``) becomes the intake's ``Inbound`` and is stored by
  ``hotline.inbound.accept`` under (``phone``, external id); the worker's phone handler (``channels.phone.handler``)
  does the rest. The caller's number is kept in its national form (``channels.phone.numbers``); a withheld number
  is no citizen. A voicemail's recording travels as an attachment.
- ``ticket_status``: what the IVR says to a caller asking about a ticket by its number — only when the ticket was
  filed from the number calling, and never anything of its content.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.phone.numbers import national
from channels.phone.routes import PhoneMessage
from hotline import inbound
from hotline.labels import EMERGENCY_LINE_LABELS
from hotline.models import Citizen, Status, Ticket, Unit

CHANNEL = "phone"


def to_inbound(message: PhoneMessage) -> inbound.Inbound:
    attachments = (inbound.Attachment(kind="recording", url=message.recording_url, fetch=True),
                   ) if message.recording_url else ()
    return inbound.Inbound(
        channel=CHANNEL, external_id=message.external_id, text=message.text,
        citizen_phone=national(message.citizen_phone), received_at=message.received_at, attachments=attachments,
        raw=dict(message.raw),
    )


def accept(session: Session, message: PhoneMessage) -> inbound.Accepted:
    return inbound.accept(session, to_inbound(message))


def status_sentence(ticket: Ticket, unit_name: str | None, zone: tzinfo) -> str:
    """The status as the IVR says it after "工单…，" (no content of the ticket: only where it stands)."""
    unit = unit_name or "承办单位"
    status = ticket.status
    if status in (Status.dispatched, Status.signed):
        due = ""
        if ticket.reply_due is not None:
            local = ticket.reply_due.astimezone(zone)
            due = f"，预计{local.month}月{local.day}日前答复"
        return f"正由{unit}办理{due}"
    if status == Status.replied:
        return f"{unit}已办理答复，我们会回访您对办理结果的评价"
    if status == Status.awaiting_citizen:
        return "需要您补充材料，工作人员会与您联系"
    if status == Status.answered:
        return "已直接答复办结"
    if status in (Status.callback, Status.closed):
        return "已办结"
    if status == Status.merged:
        return "已与反映同一问题的工单合并办理"
    if status == Status.transferred:
        line = EMERGENCY_LINE_LABELS.get(ticket.emergency_line or "", "紧急服务")
        return f"已转交{line}处理"
    return "已受理，正在安排承办单位"


def ticket_status_for(city_timezone: str) -> Callable[[Session, str, str], str | None]:
    zone = ZoneInfo(city_timezone)

    def ticket_status(session: Session, number: str, caller: str) -> str | None:
        """The ticket's status, or None when there is no such ticket filed from the calling number."""
        phone = national(caller)
        if phone is None:
            return None
        row = session.execute(
            select(Ticket, Unit.name)
            .join(Citizen, Citizen.id == Ticket.citizen_id)
            .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
            .where(Ticket.number == number, Citizen.phone == phone)
            .limit(1)
        ).first()
        if row is None:
            return None
        return status_sentence(row[0], row[1], zone)

    return ticket_status
