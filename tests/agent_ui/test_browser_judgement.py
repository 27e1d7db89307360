"""What the desk's people found wrong with its judgement (issue 13), checked in a real browser: 更正分类 re-routes,
the pre-filled dispatch note never names a unit it is not sent to, 重办 goes back to its unit with a mark and the
reason, and the messages and offered actions a person sees."""

from __future__ import annotations

from typing import Any

import httpx
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


def test_after_a_transfer_to_119_a_follow_up_ticket_goes_to_a_unit(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """A gas leak goes to 119 at once; the gas pipe still needs a unit. From the transferred ticket the agent opens a
    关联工单 for the same citizen with the text pre-filled; it enters the normal intake and dispatch, and both tickets
    name each other in their history (the unit sees the line it went to, not the transferred ticket)."""
    leak = intake(live_server, city, "月湖新村3栋楼道里燃气泄漏，煤气味很浓",
                  citizen={"name": "王先生", "phone": "13800003333"})
    agent = Desk(browser, live_server, "agent")
    page = agent.page
    open_on_agent_desk(agent, leak["id"])
    page.click("#ticket details.act-transfer summary")
    assert page.input_value("#ticket form.act-transfer select[name=line]") == "119"
    page.click("#ticket form.act-transfer button[type=submit]")
    page.wait_for_selector("#ticket details.act-follow_up")
    page.click("#ticket details.act-follow_up summary")
    form = page.locator("#ticket form.act-follow_up")
    assert form.locator("[name=text]").input_value() == leak["text"]
    form.locator("[name=text]").fill(leak["text"] + "。119已到场处置，请燃气集团上门检修管道")
    with page.expect_response(lambda r: "/actions/follow_up" in r.url) as response_info:
        form.locator("button[type=submit]").click()
    assert response_info.value.status == 200
    source = api(live_server, city, "agent", "GET", f"/api/tickets/{leak['id']}")
    assert source["status"] == "transferred" and source["emergency_line"] == "119"
    linked = [e for e in source["events"] if e["type"] == "follow_up"]
    assert len(linked) == 1
    follow_id, follow_number = linked[0]["data"]["follow_up_id"], linked[0]["data"]["follow_up_number"]
    # the desk opens the new ticket, which waits in the queue for dispatch like any other
    page.wait_for_selector(f"#ticket[data-ticket-id='{follow_id}'] .analysis")
    assert follow_number in page.inner_text("#ticket .ticket-head")
    page.wait_for_selector(f"#queue-list li[data-id='{follow_id}']")
    history = page.inner_text("#ticket .history")
    assert f"由工单 {leak['number']}" in history and "119" in history
    assert "原工单已转 119" in page.inner_text("#ticket .analysis")  # not "建议转 119" a second time
    agent.shot("agent-follow-up-ticket")
    follow = api(live_server, city, "agent", "GET", f"/api/tickets/{follow_id}")
    assert follow["status"] == "received" and follow["citizen"]["id"] == leak["citizen"]["id"]
    assert follow["text"].endswith("请燃气集团上门检修管道")
    assert follow["events"][0]["data"]["follows_number"] == leak["number"]
    # back on the transferred ticket, its history links to the follow-up
    page.click(f"#ticket .history a[data-ticket-id='{leak['id']}']")
    page.wait_for_selector(f"#ticket[data-ticket-id='{leak['id']}']")
    assert follow_number in page.inner_text("#ticket .history")
    dispatch(live_server, city, follow_id, "zjj")
    seen = api(live_server, city, "zjj", "GET", f"/api/tickets/{follow_id}")
    receive = seen["events"][0]["data"]
    assert receive["follows_line"] == "119" and "follows_number" not in receive and "follows_id" not in receive
    agent.close()


def test_the_supervisors_ticket_dialog_shows_its_orders_and_cases_with_the_actions_allowed(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """Opened on the board, a ticket shows every 督办 order (answered or waiting) and 问责 case with its state, and
    offers 督办, 催办 and 问责 as the workflow allows them on this ticket."""
    ticket = intake(live_server, city, "澄江街道文化路井盖缺失，存在安全隐患")
    dispatch(live_server, city, ticket["id"], "cjjd")
    act(live_server, city, "supervisor", ticket["id"], "supervise", note="请今天内设置围挡")
    act(live_server, city, "cjjd", ticket["id"], "respond_supervision", note="围挡已设置")
    act(live_server, city, "supervisor", ticket["id"], "supervise", note="请两日内补齐井盖")
    act(live_server, city, "supervisor", ticket["id"], "accountability", note="签收后两天无人到场")
    act(live_server, city, "cjjd", ticket["id"], "accountability", decision="explain", note="当天人员在抢修水管")
    board = Desk(browser, live_server, "supervisor")
    page = board.page
    page.evaluate(f"window.__desk.openDetail({ticket['id']})")
    panel = page.locator("dialog#detail[open] .oversight")
    panel.locator("li.order").nth(1).wait_for()
    orders = [panel.locator("li.order").nth(i).inner_text() for i in range(2)]
    assert any("单位已回复" in o and "围挡已设置" in o for o in orders), orders
    assert any("待单位回复" in o and "请两日内补齐井盖" in o for o in orders), orders
    case = panel.locator("li.case").inner_text()
    assert "已说明，待督办员决定" in case and "当天人员在抢修水管" in case
    assert panel.locator(".oversight-actions button").all_inner_texts() == ["督办", "催办", "问责"]
    panel.locator(".oversight-actions button:has-text('督办')").click()
    supervise = page.locator("dialog#detail details.act-supervise")
    assert supervise.get_attribute("open") is not None
    supervise.locator("[name=note]").fill("请明日上午前上报处置照片")
    with page.expect_response(lambda r: "/actions/supervise" in r.url) as response_info:
        supervise.locator("button[type=submit]").click()
    assert response_info.value.status == 200
    page.wait_for_selector("dialog#detail[open] .oversight li.order:has-text('请明日上午前上报处置照片')")
    board.shot("supervisor-dialog-oversight", full=False)
    # a closed ticket can no longer be supervised or reminded; a case may still be opened on it
    done = intake(live_server, city, "澄江街道建设路路灯不亮")
    dispatch(live_server, city, done["id"], "cjjd")
    act(live_server, city, "cjjd", done["id"], "sign")
    act(live_server, city, "cjjd", done["id"], "reply", note="已修复")
    act(live_server, city, "agent", done["id"], "callback", satisfaction="satisfied", solved=True)
    act(live_server, city, "agent", done["id"], "close")
    page.click("#detail-close")
    page.evaluate(f"window.__desk.openDetail({done['id']})")
    page.wait_for_selector(f"dialog#detail[open] #detail-body[data-ticket-id='{done['id']}'] .oversight")
    assert "暂无督办与问责" in page.inner_text("dialog#detail .oversight")
    assert page.locator("dialog#detail .oversight-actions button").all_inner_texts() == ["问责"]
    board.close()


def test_an_unsatisfied_callback_shows_on_the_ticket_for_every_role_masked_as_visibility_says(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """The callback's result (solved? satisfaction) and the citizen's words sit in the ticket's summary, not only in
    its history: the supervisor reviewing it, the dispatcher and the unit getting it back (numbers masked for those
    two, as everywhere), and no other unit."""
    ticket = intake(live_server, city, "澄江街道文化路井盖缺失，存在安全隐患", citizen={"phone": "13800004444"})
    dispatch(live_server, city, ticket["id"], "cjjd")
    act(live_server, city, "cjjd", ticket["id"], "sign")
    act(live_server, city, "cjjd", ticket["id"], "reply", note="已补齐井盖。")
    words = "井盖还是没有补，昨晚有人差点摔倒，可以打我另一个电话13912345678"
    act(live_server, city, "agent", ticket["id"], "callback", satisfaction="unsatisfied", solved=False, note=words)

    def result(page: Any, selector: str) -> str:
        page.wait_for_selector(f"{selector} .callback-result")
        text: str = page.inner_text(f"{selector} .callback-result")
        assert "不满意" in text and "未解决" in text
        return text

    board = Desk(browser, live_server, "supervisor")
    board.page.click(f"#uns-list li[data-id='{ticket['id']}'] button.item")
    assert words in result(board.page, "dialog#detail[open]")
    board.close()
    act(live_server, city, "supervisor", ticket["id"], "reopen", note="市民反映井盖仍未补齐")
    masked = words.replace("13912345678", "139****5678")
    desk = Desk(browser, live_server, "dispatcher")
    open_on_agent_desk(desk, ticket["id"])
    assert masked in result(desk.page, "#ticket")
    desk.shot("dispatcher-callback-result")
    desk.close()
    dispatch(live_server, city, ticket["id"], "cjjd")
    unit = Desk(browser, live_server, "cjjd")
    unit.page.click(f"#unit-list li[data-id='{ticket['id']}'] button.item")
    assert masked in result(unit.page, "#ticket")
    unit.close()
    response = httpx.get(f"{live_server.url}/api/tickets/{ticket['id']}", headers=city.headers("zjj"))
    assert response.status_code == 404


def test_on_a_phone_the_opened_ticket_is_in_view_with_a_way_back_and_no_keyboard_hints(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """On a 390×844 phone: the opened ticket's number is below the sticky top bar, not under it; no keyboard hints
    (nobody has a keyboard); 返回列表 leads back to the ticket in the list."""
    made = [intake(live_server, city, f"澄江街道文化路{n}号井盖缺失，存在安全隐患") for n in (2, 4, 6, 8)]
    for ticket in made:
        dispatch(live_server, city, ticket["id"], "cjjd")
    last = made[-1]["id"]
    for who, item, desk_hint in (("cjjd", f"#unit-list li[data-id='{last}']", None),
                                 ("agent", f"#queue-list li[data-id='{made[0]['id']}']", ".shortcuts")):
        desk = Desk(browser, live_server, who, phone=True)
        page = desk.page
        if who == "agent":
            made.append(intake(live_server, city, "澄江街道建设路有人占道经营"))
            item = f"#queue-list li[data-id='{made[-1]['id']}']"
        page.wait_for_selector(item)
        page.click(f"{item} button.item")
        page.wait_for_selector("#ticket details.action")
        assert page.locator("kbd:visible").count() == 0, page.locator("kbd:visible").all_inner_texts()
        if desk_hint:
            assert not page.locator(desk_hint).is_visible()
        page.wait_for_function(
            """() => { const bar = document.querySelector('.topbar').getBoundingClientRect();
                       const n = document.querySelector('#ticket .ticket-head .number').getBoundingClientRect();
                       return n.top >= bar.bottom && n.bottom <= window.innerHeight; }""", timeout=5000)
        desk.shot(f"{who}-desk-phone-ticket", full=False)
        back = page.locator("#ticket .back-to-list")
        assert back.is_visible() and back.inner_text() == "返回列表"
        back.click()
        page.wait_for_function(
            """(sel) => { const bar = document.querySelector('.topbar').getBoundingClientRect();
                          const li = document.querySelector(sel).getBoundingClientRect();
                          return li.top >= bar.bottom && li.bottom <= window.innerHeight; }""", arg=item, timeout=5000)
        desk.close()


@pytest.mark.parametrize(("who", "path", "for_role", "home", "home_title"), [
    ("cjjd", "/desk/supervisor", "督办员、管理员", "/desk/unit", "承办台"),
    ("agent", "/desk/admin", "管理员", "/desk/agent", "受理台"),
])
def test_a_desk_for_another_role_says_so_in_chinese_without_a_console_error(
    browser: Any, live_server: LiveServer, city: City, who: str, path: str, for_role: str, home: str,
    home_title: str,
) -> None:
    desk = Desk(browser, live_server, who)
    desk.page.goto(live_server.url + path)
    desk.page.wait_for_selector("main.denied")
    notice = desk.page.inner_text("main.denied")
    assert f"供{for_role}使用" in notice, notice
    link = desk.page.locator("main.denied a")
    assert link.get_attribute("href") == home and home_title in link.inner_text()
    desk.page.evaluate("() => new Promise((done) => setTimeout(done, 0))")  # let a pending error surface
    desk.shot(f"wrong-role-{who}")
    desk.close()  # no uncaught error on the page
