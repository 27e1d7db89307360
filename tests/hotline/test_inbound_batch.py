"""The worker's batch (``intake.create_tickets``: multi-row INSERTs) makes the tickets the one-ticket intake
(``intake.create_ticket``: the ORM and ``workflow.perform``) makes: the same columns, events, co-units and desk
events, auto-dispatch included; a dispatch the workflow refuses fails only its own message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hotline import inbound, intake
from hotline.auth import channel_actor
from hotline.db import attach_publisher, transaction
from hotline.models import InboundMessage, Ticket, TicketCoUnit, TicketEvent, Unit
from hotline.services import Services
from hotline.suggestion import CategorySuggestion, NullSuggester, Suggestion
from tests.conftest import City

#: what differs between two tickets made of the same text by design: identity, number, and the row's version
#: (the one-ticket intake writes the ticket, then updates it to dispatch it; the batch inserts it dispatched)
OWN = {"id", "number", "version", "updated_at"}


class Confident(NullSuggester):
    """A confident analysis of 占道经营 in 澄江街道: the catalogue's unit leads, 市城管局 assists, auto-dispatched.
    A text containing ``refused`` names a unit the directory has switched off."""

    def __init__(self, city: City, refused: str | None = None, off_unit: int | None = None) -> None:
        self.city, self.refused, self.off_unit = city, refused, off_unit

    def suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        ids = self.city.ids
        unit = self.off_unit if self.refused and self.refused in text else ids["unit:cjjd"]
        return Suggestion(
            categories=[CategorySuggestion(ids["cat:zhandao"], "1501", "占道经营", 0.99)], kind="complaint",
            area_id=ids["area:cj"], area_code="mh-dh-cj", area_name="澄江街道", unit_id=unit,
            co_unit_ids=[ids["unit:cgj"]], route_explanation="派单目录：占道经营 × 澄江街道", auto_dispatch=True)


def ticket_of(session: Session, inbound_id: int) -> Ticket:
    return session.scalars(select(Ticket).join(InboundMessage, InboundMessage.ticket_id == Ticket.id)
                           .where(InboundMessage.id == inbound_id)).one()


def made(session: Session, ticket: Ticket, published: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything about a new ticket that is not its identity."""
    events = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                             .order_by(TicketEvent.id)).all()
    return {
        "columns": {c.key: getattr(ticket, c.key) for c in Ticket.__table__.columns if c.key not in OWN},
        "co_units": sorted(session.scalars(select(TicketCoUnit.unit_id).where(TicketCoUnit.ticket_id == ticket.id))),
        "events": [(e.type, e.from_status, e.to_status, e.note, e.actor_name, e.actor_role, e.unit_id,
                    {k: v for k, v in e.data.items() if k != "external_id"}, e.created_at) for e in events],
        "desk": [{k: v for k, v in m.items() if k not in ("event_id", "ticket_id", "ticket_number")}
                 for m in published if m["ticket_id"] == ticket.id],
        "desk_ids": [m["event_id"] for m in published if m["ticket_id"] == ticket.id] == [e.id for e in events],
    }


def test_a_batch_makes_the_ticket_the_single_intake_makes(services: Services, city: City) -> None:
    published: list[dict[str, Any]] = []
    attach_publisher(services.sessions, published.extend)
    suggester = Confident(city)
    now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # a Thursday, 10:00 in the city: deadlines in working time
    text = "澄江街道建设路有人占道经营，摊位堵住了人行道"
    with transaction(services.sessions) as session:
        [accepted] = [inbound.accept(session, inbound.Inbound(channel="web", external_id="w1", text=text), now=now)]
    report = inbound.process_pending(services.sessions, suggester, services.timing, now=now)
    assert report.created == 1
    with transaction(services.sessions) as session:
        request = intake.IntakeRequest(channel="web", external_id="w2", text=text)
        single = intake.create_ticket(session, request, channel_actor("web"), suggester=suggester,
                                      timing=services.timing, now=now)
        single_id = single.id
    with services.sessions() as session:
        batch = made(session, ticket_of(session, accepted.inbound_id), published)
        one = made(session, session.get_one(Ticket, single_id), published)
    assert batch["columns"]["status"] == "dispatched" and batch["co_units"] == [city.ids["unit:cgj"]]
    assert [e[0] for e in batch["events"]] == ["receive", "dispatch"]
    assert batch["desk"][0]["lead_unit_id"] is None and batch["desk"][1]["lead_unit_id"] == city.ids["unit:cjjd"]
    assert batch == one


def test_a_dispatch_the_workflow_refuses_fails_only_its_message(services: Services, city: City) -> None:
    published: list[dict[str, Any]] = []
    attach_publisher(services.sessions, published.extend)
    with transaction(services.sessions) as session:
        session.execute(update(Unit).where(Unit.id == city.ids["unit:zjj"]).values(active=False))
    suggester = Confident(city, refused="（1）", off_unit=city.ids["unit:zjj"])
    with transaction(services.sessions) as session:
        accepted = [inbound.accept(session, inbound.Inbound(channel="web", external_id=f"w{n}",
                                                            text=f"建设路有人占道经营（{n}）")) for n in range(3)]
    report = inbound.process_pending(services.sessions, suggester, services.timing)
    assert (report.created, report.retried, report.failed) == (2, 1, 0)
    with services.sessions() as session:
        refused = session.get_one(InboundMessage, accepted[1].inbound_id)
        assert refused.state == "accepted" and refused.ticket_id is None
        assert refused.last_error is not None and "inactive unit" in refused.last_error
        tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert len(tickets) == 2 and all(t.status == "dispatched" for t in tickets)
        assert {m["ticket_id"] for m in published} == {t.id for t in tickets}
        assert session.scalars(select(TicketEvent.ticket_id)).all().count(tickets[0].id) == 2
