"""The desk in a real browser (Debian's chromium driven by Playwright), against a live server on SQLite."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from hotline.models import Ticket
from tests.agent_ui.conftest import SCREENSHOTS, LiveServer
from tests.conftest import City

pytestmark = pytest.mark.browser

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">占道经营<b>加粗</b>'


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """Browser tests run against a fresh SQLite file (the server and the test share it)."""
    path = tmp_path / "desk.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


class Desk:
    """One logged-in person in their own browser context (sessionStorage is per tab)."""

    def __init__(self, browser: Any, server: LiveServer, who: str, *, phone: bool = False) -> None:
        viewport = {"width": 390, "height": 844} if phone else {"width": 1440, "height": 1000}
        self.context = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(server.url + "/")
        self.page.fill("#username", who)
        self.page.fill("#password", who + "123")
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_url("**/desk/**")
        self.wait_live()

    def wait_live(self) -> None:
        self.page.wait_for_selector("body[data-live=on]", timeout=10_000)

    def goto(self, server: LiveServer, path: str) -> None:
        self.page.goto(server.url + path)
        self.wait_live()

    def shot(self, name: str, full: bool = True) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full)

    def mark(self) -> None:
        """A marker that a reload would wipe: proves updates arrive without reloading."""
        self.page.evaluate("window.__noReload = 1")

    def not_reloaded(self) -> bool:
        return bool(self.page.evaluate("window.__noReload === 1"))

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


def api(server: LiveServer, city: City, who: str, method: str, path: str, **body: Any) -> Any:
    response = httpx.request(method, server.url + path, headers=city.headers(who), json=body or None, timeout=10)
    assert response.status_code < 300, response.text
    return response.json()


def intake(server: LiveServer, city: City, text: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = api(server, city, "agent", "POST", "/api/intake", channel="phone", text=text, **extra)
    return result


def dispatch(server: LiveServer, city: City, ticket_id: int, unit: str) -> None:
    api(server, city, "dispatcher", "POST", f"/api/tickets/{ticket_id}/actions/dispatch",
        unit_id=city.ids[f"unit:{unit}"])


def test_agent_dispatches_and_the_open_unit_page_shows_it_within_a_second(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    unit = Desk(browser, live_server, "cjjd")
    assert unit.page.url.endswith("/desk/unit")
    unit.mark()
    agent = Desk(browser, live_server, "agent")
    page = agent.page
    assert page.url.endswith("/desk/agent")
    intake(live_server, city, "长江路菜市场门口商贩占道经营，早高峰堵住人行道",
           citizen={"phone": "13800001111", "name": "李女士"})
    # screen-pop: the caller's earlier tickets
    page.fill("#call-phone", "13800001111")
    page.press("#call-phone", "Enter")
    page.wait_for_selector("#screenpop li")
    assert "长江路菜市场" in page.inner_text("#screenpop")
    # a new call, recorded from the desk (POST /api/intake, channel phone)
    page.click("#screenpop button:has-text('为此来电新建工单')")
    assert page.input_value("#in-phone") == "13800001111"
    page.fill("#in-text", "澄江街道建设路早市摊贩占道经营，人行道无法通行，希望尽快处理")
    page.fill("#in-location", "澄江街道建设路")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#ticket .analysis .kb strong")  # the knowledge article's title arrives last
    analysis = page.inner_text("#ticket .analysis")
    for expected in ("城市管理", "81.2%", "城乡建设", "环境保护", "投诉", "澄江街道", "澄江街道办事处",
                     "派单目录", "占道经营的投诉处理流程"):
        assert expected in analysis, expected
    assert page.locator("#ticket .analysis .dups li").count() == 1  # the earlier open ticket
    # dispatch form pre-filled from the analysis: lead unit and co-unit
    page.click("#ticket details.act-dispatch summary")
    form = page.locator("#ticket form.act-dispatch")
    assert form.locator("select[name=unit_id]").input_value() == str(city.ids["unit:cjjd"])
    assert form.locator(f"input[name=co_unit_ids][value='{city.ids['unit:cgj']}']").is_checked()
    agent.shot("agent-desk")
    number = page.inner_text("#ticket .ticket-head .number")
    with page.expect_response(lambda r: "/actions/dispatch" in r.url) as response_info:
        form.locator("button[type=submit]").click()
    assert response_info.value.status == 200
    started = time.monotonic()
    unit.page.wait_for_selector(f"#unit-list li:has-text('{number}')", timeout=1000)
    assert time.monotonic() - started < 1.0
    assert unit.not_reloaded()
    unit.page.click(f"#unit-list li:has-text('{number}') button.item")
    unit.page.wait_for_selector("#ticket details.act-sign")
    unit.shot("unit-desk")
    agent.close()
    unit.close()


def test_unit_signs_and_replies_and_the_board_updates(browser: Any, live_server: LiveServer, city: City) -> None:
    ticket = intake(live_server, city, "澄江街道建设路路灯连续三晚不亮，夜间行人摔倒",
                    citizen={"phone": "13912345678", "name": "张先生"})
    dispatch(live_server, city, ticket["id"], "cjjd")
    near_due(live_server, ticket["id"], timedelta(hours=2))
    board = Desk(browser, live_server, "supervisor")
    assert board.page.url.endswith("/desk/supervisor")
    board.mark()
    board.page.wait_for_selector(f"#yellow-list li[data-id='{ticket['id']}']")
    unit = Desk(browser, live_server, "cjjd")
    page = unit.page
    page.click(f"#unit-list li[data-id='{ticket['id']}'] button.item")
    page.click("#ticket form.act-sign button[type=submit]")
    page.wait_for_selector("#ticket details.act-reply")
    # ask for more time: the board's approvals list shows it live
    page.click("#ticket details.act-request_extension summary")
    page.fill("#ticket form.act-request_extension input[name=working_hours]", "8")
    page.fill("#ticket form.act-request_extension textarea[name=note]", "需协调供电公司更换线路，申请延期一个工作日")
    page.click("#ticket form.act-request_extension button[type=submit]")
    board.page.wait_for_selector(f"#ext-list li[data-id='{ticket['id']}']", timeout=3000)
    # reply with the result and attachment descriptions
    page.wait_for_selector("#ticket details.act-reply")
    page.click("#ticket details.act-reply summary")
    page.fill("#ticket form.act-reply textarea[name=note]", "已更换损坏的路灯控制器，三盏路灯恢复照明。")
    page.fill("#ticket form.act-reply textarea[name=attachments]", "维修前照片\n维修后照片")
    page.click("#ticket form.act-reply button[type=submit]")
    page.wait_for_selector("#ticket .badge.st-replied")
    board.page.wait_for_selector(f"#yellow-list li[data-id='{ticket['id']}']", state="detached", timeout=3000)
    board.page.wait_for_selector(f"#ext-list li[data-id='{ticket['id']}']", state="detached", timeout=3000)
    assert board.not_reloaded()
    unit.shot("unit-desk-replied")

    # the callback: unsatisfied goes to the supervisor's board, satisfied is closed in one step
    agent = Desk(browser, live_server, "agent")
    agent.goto(live_server, "/desk/callback")
    agent.page.click(f"#cb-list li[data-id='{ticket['id']}'] button.item")
    assert "已更换损坏的路灯控制器" in agent.page.inner_text("#cb-detail .reply")
    assert "13912345678" in agent.page.inner_text("#cb-detail .callee")  # agents call back: full number
    agent.shot("callback-desk")
    agent.page.check("input[name=solved][value=false]")
    agent.page.check("input[name=satisfaction][value=unsatisfied]")
    agent.page.click(".callback-form button[type=submit]")
    board.page.wait_for_selector(f"#uns-list li[data-id='{ticket['id']}']", timeout=3000)
    agent.page.wait_for_selector(f"#cb-list li[data-id='{ticket['id']}']", state="detached")

    second = intake(live_server, city, "咨询社保卡补办需要带哪些材料")
    api(live_server, city, "agent", "POST", f"/api/tickets/{second['id']}/actions/answer",
        note="携带身份证到任一社保服务网点即可补办。")
    agent.page.wait_for_selector(f"#cb-list li[data-id='{second['id']}']")
    agent.page.click(f"#cb-list li[data-id='{second['id']}'] button.item")
    agent.page.check("input[name=solved][value=true]")
    agent.page.check("input[name=satisfaction][value=satisfied]")
    agent.page.click(".callback-form button[type=submit]")
    agent.page.wait_for_selector(f"#cb-list li[data-id='{second['id']}']", state="detached")
    closed = api(live_server, city, "agent", "GET", f"/api/tickets/{second['id']}")
    assert closed["status"] == "closed" and closed["satisfaction"] == "satisfied"
    for d in (agent, unit, board):
        d.close()


def near_due(server: LiveServer, ticket_id: int, left: timedelta, *, elapsed: timedelta = timedelta(hours=20)) -> None:
    """Make the ticket an urgent one (clock time, so the test does not depend on office hours) that is due soon."""
    now = datetime.now(UTC)
    with server.services.sessions() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket_id).values(
            urgent=True, dispatched_at=now - elapsed, reply_due=now + left))
        s.commit()


def test_a_ticket_passing_its_deadline_turns_red_on_the_open_board(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    ticket = intake(live_server, city, "澄江街道幸福小区地下车库积水严重")
    dispatch(live_server, city, ticket["id"], "cgj")
    near_due(live_server, ticket["id"], timedelta(seconds=6))
    board = Desk(browser, live_server, "supervisor")
    row = f"li[data-id='{ticket['id']}']"
    board.page.wait_for_selector(f"#yellow-list {row}")
    board.mark()
    board.page.wait_for_selector(f"#red-list {row}", timeout=12_000)
    assert board.page.locator(f"#yellow-list {row}").count() == 0
    assert board.not_reloaded()
    assert "超期" in board.page.inner_text(f"#red-list {row}")
    board.close()


def test_a_unit_page_never_shows_another_units_ticket(browser: Any, live_server: LiveServer, city: City) -> None:
    mine = intake(live_server, city, "建设路工地夜间施工噪音扰民")
    dispatch(live_server, city, mine["id"], "zjj")
    theirs = intake(live_server, city, "人民广场周边共享单车乱停放")
    dispatch(live_server, city, theirs["id"], "cgj")
    unit = Desk(browser, live_server, "zjj")
    unit.page.wait_for_selector(f"#unit-list li[data-id='{mine['id']}']")
    later = intake(live_server, city, "中山路人行道被摊贩占用")
    dispatch(live_server, city, later["id"], "cgj")
    mine2 = intake(live_server, city, "光明小区楼道墙体开裂")
    dispatch(live_server, city, mine2["id"], "zjj")
    unit.page.wait_for_selector(f"#unit-list li[data-id='{mine2['id']}']")
    shown = unit.page.eval_on_selector_all("#unit-list li[data-id]", "els => els.map(e => e.dataset.id)")
    ids = {int(x) for x in shown}
    assert ids == {mine["id"], mine2["id"]}
    seen = set(unit.page.evaluate("[...window.__desk.live.seen]"))
    assert seen  # events did arrive…
    events = api(live_server, city, "supervisor", "GET", f"/api/tickets/{later['id']}")["events"]
    assert not seen & {e["id"] for e in events}  # …but none of the other unit's ticket
    text = unit.page.inner_text("body")
    assert theirs["number"] not in text and later["number"] not in text
    unit.close()


def test_script_in_a_complaint_stays_text(browser: Any, live_server: LiveServer, city: City) -> None:
    ticket = intake(live_server, city, XSS, title=XSS[:60], location=XSS[:40])

    def check(desk: Desk) -> None:
        assert desk.page.inner_text("#ticket .complaint .text") == XSS
        for root in ("#ticket", "main"):
            assert desk.page.locator(f"{root} img").count() == 0
            assert desk.page.locator(f"{root} script").count() == 0
            assert desk.page.locator(f"{root} b").count() == 0
        assert desk.page.evaluate("typeof window.__xss") == "undefined"

    agent = Desk(browser, live_server, "agent")
    item = f"#queue-list li[data-id='{ticket['id']}']"
    agent.page.wait_for_selector(item)
    assert XSS[:20] in agent.page.inner_text(item)
    agent.page.click(f"{item} button.item")
    agent.page.wait_for_selector("#ticket .complaint .text")
    check(agent)
    agent.shot("agent-desk-xss")
    agent.close()

    dispatch(live_server, city, ticket["id"], "cjjd")
    unit = Desk(browser, live_server, "cjjd")
    unit.page.click(f"#unit-list li[data-id='{ticket['id']}'] button.item")
    unit.page.wait_for_selector("#ticket .complaint .text")
    check(unit)
    unit.close()


def test_phone_layout_of_the_unit_desk(browser: Any, live_server: LiveServer, city: City) -> None:
    ticket = intake(live_server, city, "澄江街道文化路井盖缺失，存在安全隐患")
    dispatch(live_server, city, ticket["id"], "cjjd")
    unit = Desk(browser, live_server, "cjjd", phone=True)
    unit.page.wait_for_selector(f"#unit-list li[data-id='{ticket['id']}']")
    width = unit.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width}px wide on a 390px phone"
    unit.page.click(f"#unit-list li[data-id='{ticket['id']}'] button.item")
    unit.page.wait_for_selector("#ticket details.act-sign")
    unit.shot("unit-desk-phone")
    login = browser.new_page()
    login.goto(live_server.url + "/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login.screenshot(path=str(SCREENSHOTS / "login.png"))
    login.close()
    unit.close()


def test_charts_drill_down_to_the_ticket_list(browser: Any, live_server: LiveServer, city: City) -> None:
    now = datetime.now(UTC)
    texts = ["建设路工地夜间施工噪音扰民", "人民广场周边共享单车乱停放", "光明小区楼道墙体开裂",
             "中山路人行道被摊贩占用"]
    channels = ["phone", "wechat", "web", "forum"]
    made = []
    for i in range(16):
        made.append(api(live_server, city, "agent", "POST", "/api/intake", channel=channels[i % 4],
                        text=texts[i % 4] + f"（第{i + 1}次反映）",
                        received_at=(now - timedelta(days=i % 6)).isoformat()))
    overdue = made[0]
    dispatch(live_server, city, overdue["id"], "cgj")
    near_due(live_server, overdue["id"], timedelta(seconds=-30))
    soon = made[1]
    dispatch(live_server, city, soon["id"], "zjj")
    near_due(live_server, soon["id"], timedelta(hours=3))
    board = Desk(browser, live_server, "supervisor")
    board.page.wait_for_selector(f"#red-list li[data-id='{overdue['id']}']")
    board.page.wait_for_function("window.__desk && window.__desk.state.stats !== null")
    today = board.page.evaluate("window.__desk.state.stats.days.length") - 1
    # click the phone bar of today in the channel chart
    series = board.page.evaluate("window.__desk.state.stats.channel.findIndex(s => s.key === 'phone')")
    point = board.page.evaluate(
        "([s, d]) => { const c = window.__desk.charts.channel;"
        " const v = window.__desk.state.stats.channel[s].counts[d];"
        " return c.convertToPixel({seriesIndex: s}, [d, v / 2]); }", [series, today])
    box = board.page.locator("#chart-channel").bounding_box()
    board.page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    board.page.wait_for_selector("#drill:not([hidden]) #drill-body tr")
    assert "电话" in board.page.inner_text("#drill-title")
    rows = board.page.locator("#drill-body tr").count()
    expected = sum(1 for i in range(16) if i % 6 == 0 and channels[i % 4] == "phone")
    assert rows == expected, (rows, expected)
    board.shot("supervisor-board")
    board.page.click("#drill-body tr button.link")
    board.page.wait_for_selector("dialog#detail[open] .complaint")
    board.shot("supervisor-detail", full=False)
    board.close()
