"""Who may see which ticket: the one rule that keeps units apart, for every reader.

Agents, dispatchers, supervisors, admins and the system see every ticket; a unit handler sees the tickets its unit
leads or co-handles (协办) and nothing else; a channel key sees none (it may only submit). Every path that shows a
ticket uses these functions: REST lists and details, search, exports, the scorecard drill-down, the WebSocket's
live events (``may_receive``, judged on the event's own unit ids at publish time) and their replay
(``visible_tickets``).
A ticket a reader may not see answers 404, the same as a missing one, so units cannot probe numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Select, or_, select

from hotline.auth import Actor
from hotline.models import Ticket, TicketCoUnit


def visible_tickets(actor: Actor) -> Select[Any]:
    """``SELECT tickets`` restricted to what ``actor`` may see."""
    stmt = select(Ticket)
    if actor.is_unit:
        co = select(TicketCoUnit.ticket_id).where(TicketCoUnit.unit_id == actor.unit_id)
        stmt = stmt.where(or_(Ticket.lead_unit_id == actor.unit_id, Ticket.id.in_(co)))
    elif not actor.sees_everything:
        stmt = stmt.where(Ticket.id == -1)
    return stmt


def sees_unit_work(actor: Actor, lead_unit_id: int | None, co_unit_ids: Iterable[int]) -> bool:
    """The rule itself, on a ticket's lead unit and co-units."""
    if actor.sees_everything:
        return True
    if actor.is_unit and actor.unit_id is not None:
        return lead_unit_id == actor.unit_id or actor.unit_id in set(co_unit_ids)
    return False


def can_see(ticket: Ticket, actor: Actor, co_unit_ids: Iterable[int]) -> bool:
    return sees_unit_work(actor, ticket.lead_unit_id, co_unit_ids)


def may_receive(actor: Actor, message: Mapping[str, Any]) -> bool:
    """A live ticket event, judged on the unit ids it carries (those of the ticket when the event was recorded)."""
    return sees_unit_work(actor, message.get("lead_unit_id"), message.get("co_unit_ids") or ())


#: attachments that carry the citizen's voice
VOICE_KINDS = frozenset({"audio", "recording"})


def may_open_attachment(actor: Actor, ticket: Ticket, kind: str) -> bool:
    """On a ticket the actor may see (``can_see``): a unit hears no voice of a confidential (保密) caller, because a
    voice names the caller as surely as a name does; photos and everything else it may open."""
    return not (ticket.confidential and actor.is_unit and kind in VOICE_KINDS)
