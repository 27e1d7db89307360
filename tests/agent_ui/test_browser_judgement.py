"""What the desk's people found wrong with its judgement (issue 13), checked in a real browser: 更正分类 re-routes,
the pre-filled dispatch note never names a unit it is not sent to, 重办 goes back to its unit with a mark and the
reason, and the messages and offered actions a person sees."""

from __future__ import annotations

from typing import Any

import pytest

from tests.agent_ui.conftest import LiveServer
from tests.agent_ui.test_browser import (  # noqa: F401  (db_url is a fixture: the SQLite file the server shares)
    Desk,
    api,
    db_url,
    dispatch,
    intake,
)
from tests.conftest import City

pytestmark = pytest.mark.browser


def act(server: LiveServer, city: City, who: str, ticket_id: int, action: str, **body: Any) -> Any:
    return api(server, city, who, "POST", f"/api/tickets/{ticket_id}/actions/{action}", **body)


def open_on_agent_desk(desk: Desk, ticket_id: int) -> None:
    desk.page.click(f"#queue-list li[data-id='{ticket_id}'] button.item")
    desk.page.wait_for_selector(f"#ticket[data-ticket-id='{ticket_id}'] .analysis")


def test_a_corrected_category_re_routes_the_suggestion_and_the_dispatch_form(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """The analysis said 城市管理 → 澄江街道办事处; corrected to 城乡建设 the catalogue says 市住建局, and so must the
    suggestion, its explanation and the dispatch form's default."""
    ticket = intake(live_server, city, "澄江街道建设路有人占道经营，摊位堵住了人行道")
    route = api(live_server, city, "agent", "GET",
                f"/api/route?category_id={city.ids['cat:chengjian']}&area_id={city.ids['area:cj']}")
    assert route["unit"]["id"] == city.ids["unit:zjj"]
    agent = Desk(browser, live_server, "agent")
    page = agent.page
    open_on_agent_desk(agent, ticket["id"])
    assert "澄江街道办事处" in page.inner_text("#ticket .analysis .route")
    page.click("#ticket details.act-recategorize summary")
    page.select_option("#ticket form.act-recategorize select[name=category_id]", str(city.ids["cat:chengjian"]))
    page.click("#ticket form.act-recategorize button[type=submit]")
    page.wait_for_selector("#ticket .analysis .route .unit:has-text('明湖市住房和城乡建设局')")
    suggestion = page.inner_text("#ticket .analysis .route")
    assert route["explanation"] in suggestion and "澄江街道办事处" not in suggestion
    page.click("#ticket details.act-dispatch summary")
    form = page.locator("#ticket form.act-dispatch")
    assert form.locator("select[name=unit_id]").input_value() == str(city.ids["unit:zjj"])
    assert form.locator("[name=note]").input_value() == route["explanation"]
    agent.close()


def test_the_prefilled_dispatch_note_never_names_another_unit(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """The pre-filled 派单说明 explains the suggested unit's rule; a dispatcher who sends the ticket elsewhere must
    not send that text into the history the other unit reads. A note they wrote themselves stays."""
    ticket = intake(live_server, city, "澄江街道建设路有人占道经营，摊位堵住了人行道")
    agent = Desk(browser, live_server, "dispatcher")
    page = agent.page
    open_on_agent_desk(agent, ticket["id"])
    page.click("#ticket details.act-dispatch summary")
    form = page.locator("#ticket form.act-dispatch")
    note = form.locator("[name=note]")
    assert "澄江街道办事处" in note.input_value()
    form.locator("select[name=unit_id]").select_option(str(city.ids["unit:zjj"]))
    assert note.input_value() == ""
    form.locator("select[name=unit_id]").select_option(str(city.ids["unit:cjjd"]))
    assert "澄江街道办事处" in note.input_value()  # back to the suggested unit: its explanation is true again
    form.locator("select[name=unit_id]").select_option(str(city.ids["unit:zjj"]))
    for box in form.locator("input[name=co_unit_ids]:checked").all():
        box.uncheck()
    with page.expect_response(lambda r: "/actions/dispatch" in r.url) as response_info:
        form.locator("button[type=submit]").click()
    assert response_info.value.status == 200
    events = api(live_server, city, "supervisor", "GET", f"/api/tickets/{ticket['id']}")["events"]
    sent = [e for e in events if e["type"] == "dispatch"][-1]
    assert sent["data"]["unit_id"] == city.ids["unit:zjj"]
    assert "澄江街道办事处" not in sent["note"] and "派单目录" not in sent["note"]
    # a note the dispatcher typed is theirs: changing the unit afterwards keeps it
    other = intake(live_server, city, "澄江街道文化路有人占道摆摊")
    page.wait_for_selector(f"#queue-list li[data-id='{other['id']}']")
    open_on_agent_desk(agent, other["id"])
    page.click("#ticket details.act-dispatch summary")
    page.fill("#ticket form.act-dispatch [name=note]", "请住建局核实摊位搭建的违建部分")
    page.select_option("#ticket form.act-dispatch select[name=unit_id]", str(city.ids["unit:zjj"]))
    assert page.input_value("#ticket form.act-dispatch [name=note]") == "请住建局核实摊位搭建的违建部分"
    agent.close()


def test_a_reopened_ticket_goes_back_to_its_unit_marked_with_the_reason(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """重办: high in the agents' queue (not behind the day's new tickets), the dispatch form proposes the current
    lead unit and the supervisor's reason, and the unit gets it back with fresh deadlines and a visible 重办 mark."""
    reopened = intake(live_server, city, "澄江街道文化路井盖缺失，存在安全隐患")
    dispatch(live_server, city, reopened["id"], "cjjd")
    act(live_server, city, "cjjd", reopened["id"], "sign")
    act(live_server, city, "cjjd", reopened["id"], "reply", note="已补齐井盖。")
    act(live_server, city, "agent", reopened["id"], "callback", satisfaction="unsatisfied", solved=False)
    newer = [intake(live_server, city, f"澄江街道建设路{n}号门前有人占道经营") for n in (3, 5, 7)]
    reason = "市民反映井盖仍未补齐，请重新到现场处理"
    act(live_server, city, "supervisor", reopened["id"], "reopen", note=reason)
    # while it waits for the dispatcher it is not in the unit's list without deadlines
    waiting = api(live_server, city, "cjjd", "GET", "/api/desk/unit-queue")["items"]
    assert reopened["id"] not in [t["id"] for t in waiting]

    agent = Desk(browser, live_server, "dispatcher")
    page = agent.page
    page.wait_for_selector(f"#queue-list li[data-id='{newer[-1]['id']}']")
    order = [int(x) for x in page.eval_on_selector_all("#queue-list li[data-id]", "els => els.map(e => e.dataset.id)")]
    assert order[0] == reopened["id"], order
    assert "重办" in page.inner_text(f"#queue-list li[data-id='{reopened['id']}'] .line1")
    open_on_agent_desk(agent, reopened["id"])
    assert reason in page.inner_text("#ticket .rework-reason")
    page.click("#ticket details.act-dispatch summary")
    form = page.locator("#ticket form.act-dispatch")
    assert form.locator("select[name=unit_id]").input_value() == str(city.ids["unit:cjjd"])
    assert reason in form.locator("[name=note]").input_value()
    with page.expect_response(lambda r: "/actions/dispatch" in r.url) as response_info:
        form.locator("button[type=submit]").click()
    assert response_info.value.status == 200

    unit = Desk(browser, live_server, "cjjd")
    item = f"#unit-list li[data-id='{reopened['id']}']"
    unit.page.wait_for_selector(item)
    assert "重办" in unit.page.inner_text(item)
    unit.page.click(f"{item} button.item")
    unit.page.wait_for_selector("#ticket .rework-reason")
    assert reason in unit.page.inner_text("#ticket .rework-reason")
    shown = api(live_server, city, "cjjd", "GET", f"/api/tickets/{reopened['id']}")
    assert shown["reply_due"] is not None and shown["reopen_count"] == 1
    dispatched = [e for e in shown["events"] if e["type"] == "dispatch"][-1]
    assert dispatched["data"]["rework"] == 1 and dispatched["data"]["reopen_reason"] == reason
    agent.close()
    unit.close()


def test_extension_decision_is_offered_only_with_a_request_shown_beside_it(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """延期审批 appears only while a request waits; the form shows the hours and reason asked for, and each radio
    sits next to its label."""
    ticket = intake(live_server, city, "澄江街道文化路井盖缺失，存在安全隐患")
    dispatch(live_server, city, ticket["id"], "cjjd")
    assert "decide_extension" not in api(live_server, city, "supervisor", "GET",
                                         f"/api/tickets/{ticket['id']}")["allowed_actions"]
    board = Desk(browser, live_server, "supervisor")
    page = board.page
    page.wait_for_selector("#ext-list li")
    page.evaluate(f"window.__desk.openDetail({ticket['id']})")
    page.wait_for_selector("dialog#detail[open] .complaint")
    assert page.locator("dialog#detail details.act-decide_extension").count() == 0
    page.click("#detail-close")
    reason = "井盖需定制，厂家供货需两天"
    act(live_server, city, "cjjd", ticket["id"], "request_extension", note=reason, working_hours=15)
    page.wait_for_selector(f"#ext-list li[data-id='{ticket['id']}']")
    page.click(f"#ext-list li[data-id='{ticket['id']}'] button.item")
    page.wait_for_selector("dialog#detail[open] details.act-decide_extension")
    page.click("dialog#detail details.act-decide_extension summary")
    shown = page.inner_text("dialog#detail form.act-decide_extension .ext-request")
    assert "15 个工作小时" in shown and reason in shown
    for value, text in (("true", "同意"), ("false", "不同意")):
        radio = page.locator(f"dialog#detail form.act-decide_extension input[value='{value}']").bounding_box()
        label = page.locator(f"dialog#detail form.act-decide_extension label:has(input[value='{value}'])")
        assert label.inner_text().strip() == text
        box = label.bounding_box()
        assert radio is not None and box is not None
        assert box["width"] < 200 and radio["x"] + radio["width"] <= box["x"] + box["width"]
    board.close()


def test_a_caller_who_gave_no_name_is_not_called_anonymous(browser: Any, live_server: LiveServer, city: City) -> None:
    """匿名 reads like a request for anonymity; a caller who simply gave no name is 未留姓名."""
    ticket = intake(live_server, city, "澄江街道建设路有人占道经营", citizen={"phone": "13800002222"})
    agent = Desk(browser, live_server, "agent")
    open_on_agent_desk(agent, ticket["id"])
    meta = agent.page.inner_text("#ticket .meta")
    assert "未留姓名" in meta and "匿名" not in meta
    agent.close()
