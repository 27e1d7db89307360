"""Notices to the citizen on the channel the ticket came by: the one mechanism for every channel.

The core decides *which* steps a citizen hears of and *what* they read; each channel's outbox ``Sender`` only
delivers the text (WeChat: a customer-service or template message; phone: an SMS through Twilio).

- Which: registered (``RECEIVED``, with its number), a later message joined it (``JOINED``), a direct answer
  (``ANSWERED``), the unit's reply (``REPLIED``), the close (``CLOSED``), a merge into another ticket (``MERGED``,
  naming the ticket it now follows), an emergency transfer (``TRANSFERRED``, naming the line) and a re-dispatch to
  another unit (``REASSIGNED``, naming no unit). ``workflow.perform`` calls ``after_event`` for every event it
  records; a channel's inbound handler queues ``RECEIVED`` / ``JOINED`` itself with ``notify``.
- What: ``hotline.notice_texts`` per channel; a confidential ticket's notice carries its number and the step only.
  The text is rendered here, in the transaction of the change, and kept in the row's payload (``text``), so what
  the desk shows in the conversation is exactly what was sent.
- To whom: a channel listed in ``ADDRESSES`` (channel -> the ``Citizen`` column with the citizen's address on it)
  when the ticket's citizen has that address; SMS only to a mobile number.

The row goes through ``hotline.outbox`` in the same transaction; the idempotency key is the ticket, the kind and
the event (or the inbound message), so a retried transaction queues one notice, not two. The wording comes from
the sessions' ``info[TEXTS_KEY]`` (``Services`` puts the city's there: ``HOTLINE_PHONE_SMS``), else the defaults.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import outbox
from hotline.labels import EMERGENCY_LINE_LABELS
from hotline.models import Citizen, Ticket, TicketEvent, Unit
from hotline.notice_texts import DEFAULT_TEXTS, NoticeTexts, TicketNotice

RECEIVED, JOINED, ANSWERED, REPLIED, CLOSED, MERGED, TRANSFERRED, REASSIGNED = (
    "ticket_received", "ticket_joined", "ticket_answered", "ticket_replied", "ticket_closed", "ticket_merged",
    "ticket_transferred", "ticket_reassigned")
KINDS = (RECEIVED, JOINED, ANSWERED, REPLIED, CLOSED, MERGED, TRANSFERRED, REASSIGNED)
#: notice kind -> its template's name in ``hotline.notice_texts``
TEMPLATE_NAMES = {RECEIVED: "accepted", JOINED: "joined", ANSWERED: "answered", REPLIED: "replied",
                  CLOSED: "closed", MERGED: "merged", TRANSFERRED: "transferred", REASSIGNED: "reassigned"}
#: workflow events that the citizen hears of (a dispatch only when it moves the ticket to another unit)
EVENT_NOTICES = {"answer": ANSWERED, "reply": REPLIED, "close": CLOSED, "merge": MERGED, "transfer": TRANSFERRED,
                 "dispatch": REASSIGNED}
#: channel -> the Citizen column with the citizen's address on that channel
ADDRESSES: dict[str, str] = {"wechat": "wechat_openid", "phone": "phone"}
TEXTS_KEY = "hotline.notice_texts"
_MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")


def address(session: Session, ticket: Ticket) -> str | None:
    """The ticket's citizen's address on the ticket's channel, if the channel takes notices and it is known."""
    column = ADDRESSES.get(ticket.channel)
    if column is None or ticket.citizen_id is None:
        return None
    value = session.scalar(select(getattr(Citizen, column)).where(Citizen.id == ticket.citizen_id))
    if not value:
        return None
    if ticket.channel == "phone" and not _MOBILE.match(str(value)):
        return None  # a landline gets no SMS
    return str(value)


def texts_of(session: Session) -> NoticeTexts:
    texts = session.info.get(TEXTS_KEY)
    return texts if isinstance(texts, NoticeTexts) else DEFAULT_TEXTS


def render(texts: NoticeTexts, channel: str, kind: str, notice: TicketNotice) -> str | None:
    """What the citizen reads on ``channel`` for a notice of ``kind``; None when the channel says nothing of it."""
    templates = texts.sms if channel == "phone" else texts.wechat if channel == "wechat" else None
    return None if templates is None else templates.text(TEMPLATE_NAMES[kind], notice)


def _unit_name(session: Session, unit_id: int | None) -> str:
    if unit_id is None:
        return ""
    return session.scalar(select(Unit.name).where(Unit.id == unit_id)) or ""


def notify(session: Session, ticket: Ticket, kind: str, *, cause: str, extra: dict[str, Any] | None = None) -> bool:
    """Queue one notice of ``kind`` about the ticket; ``cause`` (an event or message id) makes it unique."""
    recipient = address(session, ticket)
    if recipient is None:
        return False
    facts = extra or {}
    notice = TicketNotice(
        number=ticket.number, confidential=ticket.confidential, summary=ticket.text or "",
        unit=_unit_name(session, ticket.lead_unit_id) if kind == REPLIED else "", reply=ticket.reply_text or "",
        parent_number=str(facts.get("parent_number") or ""),
        line=EMERGENCY_LINE_LABELS.get(str(facts.get("line") or ""), str(facts.get("line") or "")))
    text = render(texts_of(session), ticket.channel, kind, notice)
    if text is None:
        return False
    payload = {"text": text, "number": ticket.number, "status": ticket.status}
    outbox.enqueue(session, channel=ticket.channel, kind=kind, key=f"notice:{ticket.id}:{kind}:{cause}",
                   payload=payload, recipient=recipient, ticket_id=ticket.id)
    return True


def kind_of(event: TicketEvent) -> str | None:
    """The notice an event makes the citizen hear, if any."""
    kind = EVENT_NOTICES.get(event.type)
    if kind == REASSIGNED:
        before, now = event.data.get("previous_unit_id"), event.data.get("unit_id")
        return kind if before is not None and before != now else None
    return kind


def after_event(session: Session, ticket: Ticket, event: TicketEvent) -> None:
    """Called by ``workflow.perform`` after it records an event: queue the citizen's notice, if it is one."""
    kind = kind_of(event)
    if kind is not None:
        notify(session, ticket, kind, cause=f"event{event.id}", extra=event.data)
