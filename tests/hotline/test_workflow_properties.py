"""Property: whatever sequence of actions random roles try, a ticket only moves along the transition table, and
its history holds exactly one event per accepted action."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from hotline import workflow
from hotline.errors import DomainError
from hotline.intake import IntakeRequest, submit
from hotline.models import Role, Ticket, TicketEvent
from hotline.services import Services
from tests.conftest import City, actor

ROLES = ["agent", "dispatcher", "supervisor", "admin", "cjjd", "cgj"]


def payload(action: str, city: City, draw: Any) -> dict[str, Any]:
    note = draw(st.sampled_from(["", "说明情况", "x"]))
    body: dict[str, Any] = {"note": note}
    if action == "dispatch":
        body["unit_id"] = city.ids[draw(st.sampled_from(["unit:cjjd", "unit:cgj"]))]
    elif action == "transfer":
        body["line"] = draw(st.sampled_from(["110", "119", "120"]))
    elif action == "merge":
        body["parent_id"] = draw(st.sampled_from([1, 2, 999]))
    elif action == "callback":
        body["satisfaction"] = draw(st.sampled_from(["satisfied", "basically_satisfied", "unsatisfied"]))
        body["solved"] = draw(st.booleans())
    elif action == "request_extension":
        body["working_hours"] = draw(st.sampled_from([1, 7.5, 30]))
    elif action == "decide_extension":
        body["approve"] = draw(st.booleans())
    elif action == "recategorize":
        body["category_id"] = city.ids["cat:zhandao"]
    elif action == "accountability":
        body["decision"] = draw(st.sampled_from(["open", "explain", "uphold", "dismiss"]))
    return body


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_random_action_sequences_follow_the_table(services: Services, city: City, data: st.DataObject) -> None:
    actors = {who: actor(services, city, who) for who in ROLES}
    with services.sessions() as s:
        ticket, _ = submit(s, IntakeRequest(channel="phone", text="澄江街道有人占道经营"), actors["agent"],
                           suggester=services.suggester, timing=services.timing)
        s.commit()
        ticket_id = ticket.id
    accepted = 0
    for _ in range(data.draw(st.integers(min_value=1, max_value=25), label="steps")):
        action_name = data.draw(st.sampled_from(sorted(workflow.ACTIONS)), label="action")
        who = data.draw(st.sampled_from(ROLES), label="role")
        body = payload(action_name, city, data.draw)
        with services.sessions() as s:
            before = s.get(Ticket, ticket_id)
            assert before is not None
            from_status, resume = before.status, before.resume_status
            try:
                parsed = workflow.parse_input(action_name, body)
                workflow.perform(s, ticket_id, action_name, actors[who], parsed, services.timing)
                s.commit()
            except (DomainError, ValueError):
                s.rollback()
                after = s.get(Ticket, ticket_id)
                assert after is not None and after.status == from_status, "a refused action changed the state"
                continue
            accepted += 1
            after = s.get(Ticket, ticket_id)
            assert after is not None
            action = workflow.ACTIONS[action_name]
            assert from_status in action.sources
            assert actors[who].role in action.roles
            if actors[who].role == Role.unit_handler and action.unit_scope == "lead":
                assert after.lead_unit_id == actors[who].unit_id or action_name == "return"
            expected = from_status if action.target is None else (
                resume if action.target == workflow.RESUME else action.target)
            assert after.status == expected
    with services.sessions() as s:
        events = s.scalar(select(func.count()).select_from(TicketEvent).where(TicketEvent.ticket_id == ticket_id))
    assert events == accepted + 1  # + the intake's "receive"
