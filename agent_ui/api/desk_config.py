"""``GET /api/desk/config``: everything the desk's pages would otherwise copy from the server.

The pages load it once (``static/js/config.js``) before they draw anything: the Chinese labels of every code
(``hotline.labels``), the desk's pages with the roles that may open them, the home page of each role, the action
table with its forms (the same list as ``GET /api/actions``), the office hours the deadlines are counted in
(``HOTLINE_OFFICE_HOURS``, as the server's calendar holds them) and the rules the pages apply on their own: which
states each list shows, and after how many failed callback attempts an unreachable citizen's ticket may be closed.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from agent_ui.api.access import FRONT_DESK, SUPERVISORS
from hotline import labels, workflow
from hotline.action_forms import ActionOut, describe_actions
from hotline.api.deps import ServicesDep, UserDep
from hotline.models import Role
from hotline.states import CALLBACK_STATES, TRIAGE_STATES, UNIT_VIEWS, sorted_states
from routing.scorecards import EVENT_TYPES as SCORECARD_EVENT_TYPES

router = APIRouter(prefix="/api/desk", tags=["desk"])


class DeskPage(BaseModel):
    path: str
    title: str
    roles: list[str]  # who may open it: the roles its endpoints serve


#: the desk's pages in the order of the top bar's navigation
DESK_PAGES: tuple[DeskPage, ...] = (
    DeskPage(path="/desk/agent", title="受理台", roles=list(FRONT_DESK)),
    DeskPage(path="/desk/callback", title="回访", roles=list(FRONT_DESK)),
    DeskPage(path="/desk/unit", title="承办台", roles=[Role.unit_handler, *SUPERVISORS]),
    DeskPage(path="/desk/supervisor", title="督办看板", roles=list(SUPERVISORS)),
    DeskPage(path="/desk/admin", title="系统管理", roles=[Role.admin]),
)

#: where each role lands after logging in, and where a page it may not open sends it
HOME_BY_ROLE: dict[str, str] = {
    "agent": "/desk/agent",
    "dispatcher": "/desk/agent",
    "unit_handler": "/desk/unit",
    "supervisor": "/desk/supervisor",
    "admin": "/desk/admin",
}


class Labels(BaseModel):
    status: dict[str, str]
    kind: dict[str, str]
    channel: dict[str, str]
    satisfaction: dict[str, str]
    event: dict[str, str]
    role: dict[str, str]
    emergency_line: dict[str, str]
    case_rule: dict[str, str]
    case_state: dict[str, str]
    case_decision: dict[str, str]
    order_state: dict[str, str]
    outcome: dict[str, str]
    delivery: dict[str, str]
    outbox_kind: dict[str, str]
    attachment_kind: dict[str, str]
    attachment_state: dict[str, str]
    knowledge_validity: dict[str, str]


class OfficeHours(BaseModel):
    periods: list[tuple[str, str]]  # ("08:30", "12:00"), … in the city's wall-clock time
    day_seconds: int  # working time in one working day: the desk's "个工作日"


class Policies(BaseModel):
    callback_attempts_before_close: int
    triage_states: list[str]  # the agent desk's queue
    callback_states: list[str]  # waiting for the callback
    unit_view_states: dict[str, list[str]]  # the unit desk's tabs
    scorecard_event_types: list[str]  # events that change a scorecard figure


class DeskConfig(BaseModel):
    labels: Labels
    home_by_role: dict[str, str]
    pages: list[DeskPage]
    actions: list[ActionOut]
    office_hours: OfficeHours
    policies: Policies


def desk_labels() -> Labels:
    return Labels(
        status=labels.STATUS_LABELS, kind=labels.KIND_LABELS, channel=labels.CHANNEL_LABELS,
        satisfaction=labels.SATISFACTION_LABELS, event=labels.EVENT_LABELS, role=labels.ROLE_LABELS,
        emergency_line=labels.EMERGENCY_LINE_LABELS, case_rule=labels.CASE_RULE_LABELS,
        case_state=labels.CASE_STATE_LABELS, case_decision=labels.CASE_DECISION_LABELS,
        order_state=labels.ORDER_STATE_LABELS,
        outcome=labels.OUTCOME_LABELS, delivery=labels.DELIVERY_LABELS, outbox_kind=labels.OUTBOX_KIND_LABELS,
        attachment_kind=labels.ATTACHMENT_KIND_LABELS, attachment_state=labels.ATTACHMENT_STATE_LABELS,
        knowledge_validity=labels.KNOWLEDGE_VALIDITY_LABELS,
    )


@router.get("/config", response_model=DeskConfig)
def desk_config(services: ServicesDep, actor: UserDep) -> DeskConfig:
    """Labels, forms, office hours and policies for any logged-in user (the same for every role)."""
    calendar = services.timing.calendar
    return DeskConfig(
        labels=desk_labels(),
        home_by_role=HOME_BY_ROLE,
        pages=list(DESK_PAGES),
        actions=describe_actions(),
        office_hours=OfficeHours(
            periods=[(start.strftime("%H:%M"), end.strftime("%H:%M")) for start, end in calendar.office_hours],
            day_seconds=round(calendar.working_day_length.total_seconds()),
        ),
        policies=Policies(
            callback_attempts_before_close=workflow.CALLBACK_ATTEMPTS_BEFORE_CLOSE,
            triage_states=list(sorted_states(TRIAGE_STATES)),
            callback_states=list(sorted_states(CALLBACK_STATES)),
            unit_view_states={view: list(sorted_states(states)) for view, states in UNIT_VIEWS.items()},
            scorecard_event_types=list(SCORECARD_EVENT_TYPES),
        ),
    )
