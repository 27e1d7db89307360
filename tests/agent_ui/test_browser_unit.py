"""The desk fixes in a real browser: 督办/问责 on the unit desk, stopped countdowns, the callback page's 未接通 and
failed archive, the agent desk's keys and toasts, and coalesced live reloads."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from hotline.models import Ticket
from tests.agent_ui.conftest import LiveServer
from tests.agent_ui.test_browser import Desk, api, db_url, dispatch, intake, near_due
from tests.conftest import City

pytestmark = pytest.mark.browser
__all__ = ["db_url"]  # the browser tests' fixture: a fresh SQLite file the server and the test share


def act(server: LiveServer, city: City, who: str, ticket_id: int, action: str, **body: Any) -> Any:
    return api(server, city, who, "POST", f"/api/tickets/{ticket_id}/actions/{action}", **body)


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_a_unit_sees_a_supervision_order_and_answers_it(browser: Any, live_server: LiveServer, city: City) -> None:
    ticket = intake(live_server, city, "澄江街道建设路早市摊贩占道经营，多次反映未解决")
    plain = intake(live_server, city, "澄江街道文化路井盖缺失，存在安全隐患")
    for t in (ticket, plain):
        dispatch(live_server, city, t["id"], "cjjd")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    act(live_server, city, "supervisor", ticket["id"], "supervise", note="请于今日17时前到场核查并书面答复",
        due_at=past)
    act(live_server, city, "supervisor", ticket["id"], "accountability", decision="open", note="签收后三日未到场核查")
    act(live_server, city, "supervisor", ticket["id"], "accountability", decision="open", note="答复内容与事实不符")

    unit = Desk(browser, live_server, "cjjd")
    page = unit.page
    card = f"#unit-list li[data-id='{ticket['id']}']"
    page.wait_for_selector(f"{card} .badge.danger:has-text('督办超期')")
    # a ticket without orders or cases: neither form (they used to show everywhere and end in a 409)
    page.click(f"#unit-list li[data-id='{plain['id']}'] button.item")
    page.wait_for_selector("#ticket details.act-sign")
    assert page.locator("#ticket .oversight").count() == 0
    assert page.locator("#ticket details.act-respond_supervision").count() == 0
    assert page.locator("#ticket details.act-accountability").count() == 0

    page.click(f"{card} button.item")
    page.wait_for_selector("#ticket .oversight")
    oversight = page.locator("#ticket .oversight")
    assert "请于今日17时前到场核查并书面答复" in oversight.inner_text()
    order = oversight.locator("li.order")
    assert "overdue" in (order.get_attribute("class") or "") and "已超期" in order.inner_text()
    color = order.locator(".due").evaluate("el => getComputedStyle(el).color")
    assert color == "rgb(197, 48, 48)", color  # --danger
    assert oversight.locator("li.case").count() == 2
    assert "签收后三日未到场核查" in oversight.inner_text() and "答复内容与事实不符" in oversight.inner_text()
    # two cases wait for the unit: the explanation names the one it answers
    page.click("#ticket details.act-accountability summary")
    select = page.locator("#ticket form.act-accountability select[name=case_id]")
    assert select.locator("option").count() == 3  # placeholder + 2 cases
    assert page.locator("#ticket form.act-accountability select[name=decision]").input_value() == "explain"
    unit.shot("unit-supervision")

    # answer the order
    page.click("#ticket details.act-respond_supervision summary")
    page.fill("#ticket form.act-respond_supervision textarea[name=note]", "已于今日到场，摊贩已劝离，已电话告知市民")
    with page.expect_response(lambda r: "/actions/respond_supervision" in r.url) as info:
        page.click("#ticket form.act-respond_supervision button[type=submit]")
    assert info.value.status == 200
    page.wait_for_selector("#ticket details.act-respond_supervision", state="detached")
    page.wait_for_selector("#ticket .oversight li.order", state="detached")
    page.wait_for_selector(f"{card} .badge:has-text('督办')", state="detached")
    answered = api(live_server, city, "supervisor", "GET", "/api/supervision?state=responded")
    assert [(o["ticket_id"], o["response"]) for o in answered] == [
        (ticket["id"], "已于今日到场，摊贩已劝离，已电话告知市民")]

    # explain the second case; the first still waits, with its case preselected
    cases = api(live_server, city, "cjjd", "GET", "/api/accountability?state=opened")
    second = next(c for c in cases if c["reason"] == "答复内容与事实不符")
    page.click("#ticket details.act-accountability summary")
    page.select_option("#ticket form.act-accountability select[name=case_id]", str(second["id"]))
    page.fill("#ticket form.act-accountability textarea[name=note]", "答复依据现场照片，已补充说明")
    with page.expect_response(lambda r: "/actions/accountability" in r.url) as info:
        page.click("#ticket form.act-accountability button[type=submit]")
    assert info.value.status == 200
    page.wait_for_selector("#ticket .oversight li.case:has-text('已说明')")
    left = api(live_server, city, "cjjd", "GET", "/api/accountability?state=opened")
    assert [c["reason"] for c in left] == ["签收后三日未到场核查"]
    assert page.locator("#ticket form.act-accountability select[name=case_id] option").count() == 1
    unit.shot("unit-supervision-answered")
    unit.close()


def test_a_replied_tickets_countdown_stops(browser: Any, live_server: LiveServer, city: City) -> None:
    on_time = intake(live_server, city, "澄江街道建设路路灯连续三晚不亮")
    late = intake(live_server, city, "澄江街道幸福小区地下车库积水严重")
    for t in (on_time, late):
        dispatch(live_server, city, t["id"], "cjjd")
        act(live_server, city, "cjjd", t["id"], "sign")
    near_due(live_server, on_time["id"], timedelta(hours=2))
    near_due(live_server, late["id"], timedelta(minutes=-90))  # already 1.5 h late
    act(live_server, city, "cjjd", late["id"], "reply", note="已组织抽排积水")

    unit = Desk(browser, live_server, "cjjd")
    page = unit.page
    card = f"#unit-list li[data-id='{on_time['id']}']"
    page.click(f"{card} button.item")
    page.wait_for_selector("#ticket .detail-countdown:has-text('剩余')")
    page.click("#ticket details.act-reply summary")
    page.fill("#ticket form.act-reply textarea[name=note]", "已更换损坏的路灯控制器，三盏路灯恢复照明。")
    page.click("#ticket form.act-reply button[type=submit]")
    page.wait_for_selector("#ticket .badge.st-replied")
    page.wait_for_selector("#ticket .detail-countdown:has-text('已答复 · 按时')")

    page.click("#tab-replied")
    page.wait_for_selector(f"{card}.light-done")
    late_card = f"#unit-list li[data-id='{late['id']}']"
    page.wait_for_selector(late_card)
    first = page.inner_text(f"{card} [data-role=countdown]")
    assert first == "已答复 · 按时"
    late_text = page.inner_text(f"{late_card} [data-role=countdown]")
    assert late_text.startswith("已答复 · 超期 1小时"), late_text
    time.sleep(2.2)  # two ticks: nothing counts any more, nothing turns red
    assert page.inner_text(f"{card} [data-role=countdown]") == first
    assert page.inner_text(f"{late_card} [data-role=countdown]") == late_text
    assert page.locator("#unit-list li.light-red").count() == 0
    unit.shot("unit-replied-stopped")
    unit.close()


def _has_callback_attempt(server: LiveServer, city: City) -> bool:
    names = {a["name"] for a in api(server, city, "agent", "GET", "/api/actions")}
    return "callback_attempt" in names


def test_the_callback_pages_no_answer_button_records_an_attempt(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    assert _has_callback_attempt(live_server, city)  # the workflow publishes the action the button posts
    ticket = intake(live_server, city, "澄江街道建设路路灯连续三晚不亮",
                    citizen={"phone": "13912345678", "name": "张先生"})
    dispatch(live_server, city, ticket["id"], "cjjd")
    act(live_server, city, "cjjd", ticket["id"], "sign")
    act(live_server, city, "cjjd", ticket["id"], "reply",
        note="已更换损坏的路灯控制器。\n维修班组：城南路灯所，联系电话见附件。")

    agent = Desk(browser, live_server, "agent")
    agent.goto(live_server, "/desk/callback")
    page = agent.page
    card = f"#cb-list li[data-id='{ticket['id']}']"
    page.wait_for_selector(card)
    assert page.inner_text(f"{card} [data-role=phone]") == "13912345678"  # agents call back: full number
    assert page.inner_text(f"{card} [data-role=reply]") == "答复：已更换损坏的路灯控制器。"  # the first line only
    page.click(f"{card} button.item")
    page.wait_for_selector("#cb-detail form.attempt-form")
    page.select_option("#cb-attempt-reason", "关机")
    with page.expect_response(lambda r: "/actions/callback_attempt" in r.url) as info:
        page.click("#cb-detail form.attempt-form button[type=submit]")
    assert info.value.status == 200
    page.wait_for_selector("#toast:has-text('已记录未接通')")
    page.wait_for_selector("#cb-detail .history li:has-text('回访未接通')")
    assert "已尝试 1 次未接通" in page.inner_text("#cb-detail form.attempt-form")
    assert page.locator(card).count() == 1  # still waiting for its callback
    events = api(live_server, city, "agent", "GET", f"/api/tickets/{ticket['id']}")["events"]
    assert [e["note"] for e in events if e["type"] == "callback_attempt"] == ["未接通：关机"]
    agent.shot("callback-no-answer")
    agent.close()

    dispatcher = Desk(browser, live_server, "dispatcher")
    dispatcher.goto(live_server, "/desk/callback")
    dispatcher.page.wait_for_selector(card)
    assert dispatcher.page.inner_text(f"{card} [data-role=phone]") == "139****5678"  # dispatchers: masked
    dispatcher.close()


def test_a_satisfied_callback_whose_archive_fails_stays_in_the_queue(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    ticket = intake(live_server, city, "咨询社保卡补办需要带哪些材料", citizen={"phone": "13800002222"})
    act(live_server, city, "agent", ticket["id"], "answer", note="携带身份证到任一社保服务网点即可补办。")
    agent = Desk(browser, live_server, "agent")
    agent.goto(live_server, "/desk/callback")
    page = agent.page
    card = f"#cb-list li[data-id='{ticket['id']}']"
    page.click(f"{card} button.item")
    page.wait_for_selector("#cb-detail .callback-form")

    def refuse(route: Any) -> None:
        route.fulfill(status=503, content_type="application/json", body='{"detail": "数据库暂时不可用"}')

    page.route("**/actions/close", refuse)
    page.check("input[name=solved][value=true]")
    page.check("input[name=satisfaction][value=satisfied]")
    page.click(".callback-form button[type=submit]")
    toast = page.wait_for_selector("#toast.error")
    message = toast.inner_text()
    assert "回访结果已保存" in message and "归档失败" in message and "数据库暂时不可用" in message, message
    assert "回访失败" not in message
    page.wait_for_selector(f"{card} .badge:has-text('待归档')")  # still on the list, as what it is now
    page.wait_for_selector("#cb-detail .to-close-notice button")
    saved = api(live_server, city, "agent", "GET", f"/api/tickets/{ticket['id']}")
    assert saved["status"] == "callback" and saved["satisfaction"] == "satisfied"
    agent.shot("callback-close-failed")

    page.unroute("**/actions/close", refuse)
    page.click("#cb-detail .to-close-notice button")
    page.wait_for_selector(card, state="detached")
    assert api(live_server, city, "agent", "GET", f"/api/tickets/{ticket['id']}")["status"] == "closed"
    agent.close()


def test_agent_desk_keys_screen_pop_for_dispatchers_and_toasts_off_the_forms(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    intake(live_server, city, "长江路菜市场门口商贩占道经营", citizen={"phone": "13800001111", "name": "李女士"})
    ticket = intake(live_server, city, "澄江街道建设路早市摊贩占道经营，人行道无法通行")
    desk = Desk(browser, live_server, "dispatcher")
    page = desk.page
    page.click("body")
    page.keyboard.press("p")  # the hint on the desk: P types the caller's number
    assert page.evaluate("document.activeElement.id") == "call-phone"
    page.keyboard.type("13800001111")
    page.keyboard.press("Enter")
    page.wait_for_selector("#screenpop li")
    pop = page.inner_text("#screenpop")
    assert "查询失败" not in pop and "长江路菜市场" in pop
    assert "138****1111" in pop and "13800001111" not in pop  # dispatchers see masked numbers
    page.click("#screenpop button:has-text('为此来电新建工单')")
    assert page.input_value("#in-phone") == "13800001111"  # the number as typed, not the masked echo
    page.click("#intake-cancel")
    page.click("body")
    page.keyboard.press("n")
    page.wait_for_selector("#intake-form:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "in-text"
    page.click("#intake-cancel")

    page.click(f"#queue-list li[data-id='{ticket['id']}'] button.item")
    page.click("#ticket details.act-dispatch summary")
    form = page.locator("#ticket form.act-dispatch")
    form.locator("select[name=unit_id]").select_option(str(city.ids["unit:cjjd"]))
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#toast.ok:has-text('派单成功')")
    box = page.locator("#toast").bounding_box()
    bar = page.locator("header.topbar").bounding_box()
    assert box is not None and bar is not None
    # in the top bar's band, which stays on screen however far the page has scrolled
    assert bar["y"] - 1 <= box["y"] and box["y"] + box["height"] <= bar["y"] + bar["height"] + 1, (box, bar)
    for selector in ("#call-form", "#ticket form", "#ticket details", "#intake-form"):
        for i in range(page.locator(selector).count()):
            other = page.locator(selector).nth(i)
            if other.is_visible():
                rect = other.bounding_box()
                if rect is not None:  # what has scrolled under the sticky top bar is hidden by the bar itself
                    bottom = bar["y"] + bar["height"]
                    shown = rect["y"] + rect["height"] - max(rect["y"], bottom)
                    rect = {**rect, "y": max(rect["y"], bottom), "height": shown} if shown > 0 else None
                assert rect is None or not overlaps(box, rect), (selector, box, rect)
    desk.shot("agent-toast", full=False)
    desk.close()


def test_live_reloads_are_coalesced_and_only_for_the_visible_list(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    mine = intake(live_server, city, "建设路工地夜间施工噪音扰民")
    dispatch(live_server, city, mine["id"], "zjj")
    unit = Desk(browser, live_server, "zjj")
    agent = Desk(browser, live_server, "agent")
    unit.page.wait_for_selector(f"#unit-list li[data-id='{mine['id']}']")
    agent.page.wait_for_selector("#queue-list")
    time.sleep(0.5)
    loads = lambda d: int(d.page.evaluate("window.__desk.state.loads"))  # noqa: E731
    unit_before, agent_before = loads(unit), loads(agent)

    # a burst of ten events on a ticket the unit lists (and the agent's queue does not)
    with httpx.Client(base_url=live_server.url, headers=city.headers("zjj"), timeout=10) as http:
        for i in range(10):
            r = http.post(f"/api/tickets/{mine['id']}/actions/comment", json={"note": f"现场处置进展第{i + 1}条"})
            assert r.status_code == 200, r.text
    # (functions, not expression strings: under the page's CSP Playwright cannot eval a string predicate)
    unit.page.wait_for_function("(n) => window.__desk.live.seen.size >= 10 && window.__desk.state.loads > n",
                                arg=unit_before)
    time.sleep(0.8)  # let a trailing reload finish
    grew = loads(unit) - unit_before
    assert 1 <= grew <= 5, grew  # ten events, a handful of reloads at most
    assert loads(agent) == agent_before  # not about its queue: no reload at all

    # something for the agent's queue still shows within a second
    started = time.monotonic()
    fresh = intake(live_server, city, "人民广场周边共享单车乱停放")
    agent.page.wait_for_selector(f"#queue-list li[data-id='{fresh['id']}']", timeout=1000)
    assert time.monotonic() - started < 1.0

    # a reconnect replays the recent events again (the seam); the page drops the ids it has seen
    before = int(unit.page.evaluate("window.__desk.live.duplicates"))
    unit.page.evaluate("window.__desk.live.ws.close()")
    unit.page.wait_for_function("(n) => window.__desk.live.duplicates > n", arg=before, timeout=15_000)
    unit.wait_live()
    for d in (unit, agent):
        d.close()


def test_a_deadline_passing_on_an_open_supervision_order_turns_it_red(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    ticket = intake(live_server, city, "澄江街道幸福小区垃圾清运不及时")
    dispatch(live_server, city, ticket["id"], "cjjd")
    soon = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    act(live_server, city, "supervisor", ticket["id"], "supervise", note="请立即安排清运", due_at=soon)
    with live_server.services.sessions() as s:  # keep the ticket itself far from its own deadline
        s.execute(update(Ticket).where(Ticket.id == ticket["id"]).values(
            reply_due=datetime.now(UTC) + timedelta(days=3)))
        s.commit()
    unit = Desk(browser, live_server, "cjjd")
    page = unit.page
    page.click(f"#unit-list li[data-id='{ticket['id']}'] button.item")
    page.wait_for_selector("#ticket .oversight li.order:not(.overdue)")
    unit.mark()
    page.wait_for_selector("#ticket .oversight li.order.overdue", timeout=10_000)
    page.wait_for_selector(f"#unit-list li[data-id='{ticket['id']}'] .badge.danger:has-text('督办超期')")
    assert unit.not_reloaded()
    unit.close()


def test_a_callback_past_its_deadline_is_marked_on_the_queue(browser: Any, live_server: LiveServer, city: City) -> None:
    late = intake(live_server, city, "澄江街道建设路井盖松动，车辆经过响声很大")
    fresh = intake(live_server, city, "澄江街道建设路路边垃圾桶满了没人清")
    for ticket in (late, fresh):
        dispatch(live_server, city, ticket["id"], "cjjd")
        act(live_server, city, "cjjd", ticket["id"], "sign")
        act(live_server, city, "cjjd", ticket["id"], "reply", note="已处理。")
    with live_server.services.sessions() as s:  # the reply was two working days ago: the callback is late
        s.execute(update(Ticket).where(Ticket.id == late["id"]).values(
            callback_due=datetime.now(UTC) - timedelta(hours=3)))
        s.commit()
    agent = Desk(browser, live_server, "agent")
    agent.goto(live_server, "/desk/callback")
    page = agent.page
    page.wait_for_selector(f"#cb-list li[data-id='{fresh['id']}']")
    assert "回访超时" in page.inner_text(f"#cb-list li[data-id='{late['id']}']")
    assert "回访超时" not in page.inner_text(f"#cb-list li[data-id='{fresh['id']}']")
    agent.shot("callback-late")
    agent.close()
