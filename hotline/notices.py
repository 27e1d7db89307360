"""Notices to the citizen on the channel the ticket came by, queued in the outbox in the change's transaction.

What the citizen hears of a ticket: that it is registered (``RECEIVED``, with its number), that a later message
joined it (``JOINED``), a direct answer (``ANSWERED``), the unit's reply (``REPLIED``) and the close (``CLOSED``).
``workflow.perform`` calls ``after_event`` for every event it records; the events in ``EVENT_NOTICES`` queue a
notice. A channel's inbound handler queues ``RECEIVED`` / ``JOINED`` itself with ``notify``.

A notice is queued only for a channel listed in ``ADDRESSES`` (channel -> the ``Citizen`` column holding the
citizen's address on it) and only when the ticket's citizen has that address; the channel's outbox ``Sender`` turns
the payload (ticket number, reply text, status) into its own wording. A channel that wants notices adds its line
and registers a sender for these kinds. The idempotency key is the ticket and the event (or the inbound message),
so a retried transaction queues one notice, not two.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import outbox
from hotline.models import Citizen, Ticket, TicketEvent

RECEIVED, JOINED, ANSWERED, REPLIED, CLOSED = (
    "ticket_received", "ticket_joined", "ticket_answered", "ticket_replied", "ticket_closed")
KINDS = (RECEIVED, JOINED, ANSWERED, REPLIED, CLOSED)
#: workflow events that the citizen hears of
EVENT_NOTICES = {"answer": ANSWERED, "reply": REPLIED, "close": CLOSED}
#: channel -> the Citizen column with the citizen's address on that channel
ADDRESSES: dict[str, str] = {"wechat": "wechat_openid"}


def address(session: Session, ticket: Ticket) -> str | None:
    """The ticket's citizen's address on the ticket's channel, if the channel takes notices and it is known."""
    column = ADDRESSES.get(ticket.channel)
    if column is None or ticket.citizen_id is None:
        return None
    value = session.scalar(select(getattr(Citizen, column)).where(Citizen.id == ticket.citizen_id))
    return str(value) if value else None


def notify(session: Session, ticket: Ticket, kind: str, *, cause: str, extra: dict[str, Any] | None = None) -> bool:
    """Queue one notice of ``kind`` about the ticket; ``cause`` (an event or message id) makes it unique."""
    recipient = address(session, ticket)
    if recipient is None:
        return False
    payload = {"number": ticket.number, "status": ticket.status, "reply": ticket.reply_text or "", **(extra or {})}
    outbox.enqueue(session, channel=ticket.channel, kind=kind, key=f"notice:{ticket.id}:{kind}:{cause}",
                   payload=payload, recipient=recipient, ticket_id=ticket.id)
    return True


def after_event(session: Session, ticket: Ticket, event: TicketEvent) -> None:
    """Called by ``workflow.perform`` after it records an event: queue the citizen's notice, if it is one."""
    kind = EVENT_NOTICES.get(event.type)
    if kind is not None:
        notify(session, ticket, kind, cause=f"event{event.id}")
