"""``GET /api/desk/config``: the desk's labels, forms, office hours and policies are the server's own."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from hotline import labels, workflow
from hotline.action_forms import FORMS
from hotline.models import Kind, Role, Status
from hotline.services import Services
from hotline.states import CALLBACK_STATES, TRIAGE_STATES, UNIT_OPEN_STATES, sorted_states
from hotline.timing import Timing
from tests.conftest import City


def config(client: TestClient, city: City, who: str = "agent") -> dict[str, Any]:
    response = client.get("/api/desk/config", headers=city.headers(who))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_only_a_logged_in_user_gets_the_config(client: TestClient, city: City) -> None:
    assert client.get("/api/desk/config").status_code == 401
    assert client.get("/api/desk/config", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    for who in ("agent", "cgj", "supervisor", "admin"):
        assert config(client, city, who) == config(client, city)


def test_the_labels_are_the_servers_tables(client: TestClient, city: City) -> None:
    got = config(client, city)["labels"]
    assert got == {
        "status": labels.STATUS_LABELS, "kind": labels.KIND_LABELS, "channel": labels.CHANNEL_LABELS,
        "satisfaction": labels.SATISFACTION_LABELS, "event": labels.EVENT_LABELS, "role": labels.ROLE_LABELS,
        "emergency_line": labels.EMERGENCY_LINE_LABELS, "case_rule": labels.CASE_RULE_LABELS,
        "case_state": labels.CASE_STATE_LABELS, "case_decision": labels.CASE_DECISION_LABELS,
        "outcome": labels.OUTCOME_LABELS,
        "delivery": labels.DELIVERY_LABELS,
        "outbox_kind": labels.OUTBOX_KIND_LABELS,
        "order_state": labels.ORDER_STATE_LABELS,
        "attachment_kind": labels.ATTACHMENT_KIND_LABELS,
        "attachment_state": labels.ATTACHMENT_STATE_LABELS,
        "knowledge_validity": labels.KNOWLEDGE_VALIDITY_LABELS,
    }
    # the ticket views word a status and a kind with the same tables
    assert got["status"]["dispatched"] == "已派单" and got["kind"]["complaint"] == "投诉"


def test_every_status_kind_and_role_has_a_label(client: TestClient, city: City) -> None:
    got = config(client, city)
    assert set(got["labels"]["status"]) == set(Status)
    assert set(got["labels"]["kind"]) == set(Kind)
    assert set(got["labels"]["role"]) == set(Role) == set(got["home_by_role"])
    assert set(workflow.ACTIONS) <= set(got["labels"]["event"])  # every action is an event in the history


def test_office_hours_follow_the_setting(
    client: TestClient, city: City, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = config(client, city)["office_hours"]
    assert default == {"periods": [["08:30", "12:00"], ["13:30", "17:30"]], "day_seconds": 27000}
    monkeypatch.setenv("HOTLINE_OFFICE_HOURS", "09:00-11:00,14:00-16:00")
    services.timing = Timing.from_database(services.sessions, services.settings.city_timezone)
    assert config(client, city)["office_hours"] == {
        "periods": [["09:00", "11:00"], ["14:00", "16:00"]], "day_seconds": 4 * 3600,
    }


def test_the_policies_are_the_workflows(client: TestClient, city: City) -> None:
    policies = config(client, city)["policies"]
    assert policies["callback_attempts_before_close"] == workflow.CALLBACK_ATTEMPTS_BEFORE_CLOSE
    assert policies["triage_states"] == list(sorted_states(TRIAGE_STATES))
    assert policies["callback_states"] == list(sorted_states(CALLBACK_STATES))
    assert policies["unit_view_states"] == {"open": list(sorted_states(UNIT_OPEN_STATES)), "replied": ["replied"]}


def test_the_action_table_is_the_one_of_get_api_actions(client: TestClient, city: City) -> None:
    actions = client.get("/api/actions", headers=city.headers("agent")).json()
    assert config(client, city)["actions"] == actions
    assert [a["name"] for a in actions] == list(workflow.ACTIONS)
    forms = {a["name"]: a["form"] for a in actions}
    assert forms["callback"] is None  # the callback page asks for it in its own way
    assert [f["name"] for f in forms["dispatch"]["fields"]] == ["unit_id", "co_unit_ids", "note"]
    extension = forms["request_extension"]["fields"][0]
    assert extension["maximum"] == workflow.ExtensionInput.model_json_schema()["properties"]["working_hours"]["maximum"]
    line = forms["transfer"]["fields"][0]
    assert [o["value"] for o in line["options"]] == ["110", "119", "120", "122"]
    decisions = {o["value"]: o["roles"] for o in forms["accountability"]["fields"][0]["options"]}
    assert decisions == {"open": ["supervisor"], "explain": ["unit_handler"], "uphold": ["supervisor"],
                         "dismiss": ["supervisor"]}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_a_form_asks_for_every_field_its_action_requires(name: str) -> None:
    schema = workflow.ACTIONS[name].payload.model_json_schema()
    asked = {a.name for a in FORMS[name].fields}
    assert set(schema.get("required", ())) <= asked
    assert asked <= set(schema["properties"])


def test_each_page_opens_for_the_roles_its_endpoints_serve(client: TestClient, city: City) -> None:
    pages = {p["path"]: set(p["roles"]) for p in config(client, city)["pages"]}
    endpoints = {"/desk/agent": "/api/desk/triage", "/desk/callback": "/api/desk/callbacks",
                 "/desk/unit": "/api/desk/unit-queue", "/desk/supervisor": "/api/desk/board",
                 "/desk/admin": "/api/audit"}
    assert set(pages) == set(endpoints)
    for page, endpoint in endpoints.items():
        for who, role in (("agent", "agent"), ("dispatcher", "dispatcher"), ("cgj", "unit_handler"),
                          ("supervisor", "supervisor"), ("admin", "admin")):
            served = client.get(endpoint, headers=city.headers(who)).status_code == 200
            assert served == (role in pages[page]), (page, role)
