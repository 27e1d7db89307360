"""The supervisor board's panels in a real browser: 考核排名, 督办单, 问责, 热点/突发聚集, and the ticket dialog that
keeps what the supervisor is typing when a live event arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.agent_ui.conftest import SCREENSHOTS, LiveServer
from tests.agent_ui.test_board import BURST
from tests.agent_ui.test_browser import (  # noqa: F401  (db_url is a fixture: the SQLite file the server shares)
    XSS,
    Desk,
    api,
    db_url,
    dispatch,
    intake,
    near_due,
)
from tests.conftest import City

pytestmark = pytest.mark.browser


def act(server: LiveServer, city: City, who: str, ticket_id: int, action: str, **body: Any) -> Any:
    return api(server, city, who, "POST", f"/api/tickets/{ticket_id}/actions/{action}", **body)


def handled(server: LiveServer, city: City, text: str, unit: str, *, satisfied: bool | None) -> dict[str, Any]:
    """A ticket dispatched to ``unit``, signed and replied; called back when ``satisfied`` is not None."""
    ticket = intake(server, city, text)
    dispatch(server, city, ticket["id"], unit)
    act(server, city, unit, ticket["id"], "sign")
    act(server, city, unit, ticket["id"], "reply", note="已到现场处理完毕。")
    if satisfied is not None:
        act(server, city, "agent", ticket["id"], "callback", satisfaction="satisfied" if satisfied else "unsatisfied",
            solved=satisfied, note="电话回访")
    return ticket


def shown_ids(desk: Desk, selector: str) -> set[int]:
    return {int(x) for x in desk.page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.id)")}


def panel_shot(desk: Desk, selector: str, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    desk.page.locator(selector).scroll_into_view_if_needed()
    desk.page.locator(selector).screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_the_ranking_shows_units_and_each_figure_drills_down(
    browser: Any, live_server: LiveServer, city: City, tmp_path: Path
) -> None:
    good = handled(live_server, city, "澄江街道建设路占道经营，摊位堵住人行道", "cgj", satisfied=True)
    waiting = intake(live_server, city, "中山路人行道被摊贩占用")
    dispatch(live_server, city, waiting["id"], "cgj")
    bad = handled(live_server, city, "光明小区楼道墙体开裂", "zjj", satisfied=False)
    cgj, zjj = city.ids["unit:cgj"], city.ids["unit:zjj"]
    board = Desk(browser, live_server, "supervisor")
    page = board.page
    page.wait_for_selector(f"#sc-body tr[data-unit='{cgj}']")
    page.wait_for_selector(f"#sc-body tr[data-unit='{zjj}']")
    first = datetime.now(UTC).astimezone().date().replace(day=1).isoformat()
    assert page.input_value("#sc-from") == first  # this month by default
    weights = [page.input_value(f"#sc-w-{k}") for k in ("response", "on_time", "resolution", "satisfaction")]
    assert weights == ["10", "30", "30", "30"]
    rows = page.locator("#sc-body tr")
    assert rows.count() == 2
    assert "明湖市城市管理局" in rows.nth(0).inner_text() and rows.nth(0).locator("td.rank").inner_text() == "1"
    zjj_row = page.locator(f"#sc-body tr[data-unit='{zjj}']")
    assert zjj_row.locator("button[data-figure=satisfaction_rate]").inner_text() == "0.0%"
    assert zjj_row.locator("td.score").inner_text() == "40.00"  # signed (10 %) and replied (30 %) in time
    # the composite drills down to what each ticket earned and lost
    zjj_row.locator("td.score button[data-figure=score]").click()
    page.wait_for_selector(f"#sc-drill-body tr[data-id='{bad['id']}'][data-outcome=missed]")
    assert "得 40.00 / 100.00 分（解决率 −30.00，满意率 −30.00）" in page.inner_text(
        f"#sc-drill-body tr[data-id='{bad['id']}']")
    assert "综合得分" in page.inner_text("#sc-drill-title")

    # 派单量 of the first unit: both of its tickets, each opening the ticket dialog
    page.click(f"#sc-body tr[data-unit='{cgj}'] button[data-figure=dispatched]")
    page.wait_for_selector("#sc-drill-title:has-text('派单量')")  # the previous drill-down may still be shown
    page.wait_for_selector("#sc-drill:not([hidden]) #sc-drill-body tr[data-id]")
    assert shown_ids(board, "#sc-drill-body tr[data-id]") == {good["id"], waiting["id"]}
    assert "派单量" in page.inner_text("#sc-drill-title")
    # 满意率 of the other unit: the one unsatisfied callback
    zjj_row.locator("button[data-figure=satisfaction_rate]").click()
    page.wait_for_selector(f"#sc-drill-body tr[data-id='{bad['id']}'][data-outcome=missed]")
    assert page.locator("#sc-drill-body tr[data-id]").count() == 1
    assert "不满意" in page.inner_text(f"#sc-drill-body tr[data-id='{bad['id']}']")
    assert "满意率" in page.inner_text("#sc-drill-title")
    panel_shot(board, "#scorecards", "supervisor-scorecards")
    page.click(f"#sc-drill-body tr[data-id='{bad['id']}'] button.link")
    page.wait_for_selector("dialog#detail[open] .complaint")
    assert bad["number"] in page.inner_text("dialog#detail .ticket-head")
    page.click("#detail-close")

    # the weights go to the server: with the response and on-time rates alone the second unit scores 100
    page.fill("#sc-w-resolution", "0")
    page.fill("#sc-w-satisfaction", "0")
    page.wait_for_selector(f"#sc-body tr[data-unit='{zjj}'] td.score button:text-is('100.00')")
    # the export carries the same period and weights, downloaded with the bearer token
    with page.expect_download() as download_info:
        page.click("#sc-export")
    download = download_info.value
    assert download.suggested_filename.startswith("scorecards_") and download.suggested_filename.endswith(".xlsx")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    sheet = load_workbook(target)["单位考核"]
    names = [sheet.cell(row=r, column=2).value for r in range(3, sheet.max_row + 1)]
    assert set(names) == {"明湖市城市管理局", "明湖市住房和城乡建设局"}
    assert {sheet.cell(row=r, column=13).value for r in range(3, sheet.max_row + 1)} == {100.0}
    board.close()


def test_supervision_orders_and_a_dismissed_accountability_case(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    late = intake(live_server, city, "澄江街道文化路井盖缺失，存在安全隐患")
    dispatch(live_server, city, late["id"], "cjjd")
    past = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    act(live_server, city, "supervisor", late["id"], "supervise", note="井盖缺失易伤人，请今日内补齐", due_at=past)
    answered = intake(live_server, city, "人民广场周边共享单车乱停放")
    dispatch(live_server, city, answered["id"], "cgj")
    act(live_server, city, "supervisor", answered["id"], "supervise", note="请三日内清理并回复")
    act(live_server, city, "cgj", answered["id"], "respond_supervision", note="已组织清理并增设停放点")
    # a case the unit explained (with markup in the explanation), and one nobody explained yet
    case_ticket = intake(live_server, city, "建设路工地夜间施工噪音扰民")
    dispatch(live_server, city, case_ticket["id"], "zjj")
    act(live_server, city, "supervisor", case_ticket["id"], "accountability", decision="open",
        note="多次超期未办结")
    act(live_server, city, "zjj", case_ticket["id"], "accountability", decision="explain", note=XSS)
    case = api(live_server, city, "supervisor", "GET", "/api/accountability?state=explained")[0]

    board = Desk(browser, live_server, "supervisor")
    page = board.page
    board.mark()
    overdue_row = f"#sv-table tbody[data-group=overdue] tr[data-ticket='{late['id']}']"
    page.wait_for_selector(overdue_row)
    assert "已超期" in page.inner_text(overdue_row) and "井盖缺失易伤人" in page.inner_text(overdue_row)
    assert "sv-overdue" in (page.get_attribute(overdue_row, "class") or "")
    responded = f"#sv-table tbody[data-group=responded] tr[data-ticket='{answered['id']}']"
    page.wait_for_selector(responded)
    assert "已组织清理并增设停放点" in page.inner_text(responded)
    item = f"#ac-groups .ac-explained li[data-case-id='{case['id']}']"
    page.wait_for_selector(item)
    assert XSS in page.inner_text(f"{item} .ac-explanation")  # markup stays text
    assert page.locator("#accountability img, #accountability script, #accountability b").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"

    # live: a case opened elsewhere shows up under 待单位说明
    other = intake(live_server, city, "光明小区楼道墙体开裂")
    dispatch(live_server, city, other["id"], "zjj")
    act(live_server, city, "supervisor", other["id"], "accountability", decision="open", note="回访不满意且未解决")
    page.wait_for_selector(f"#ac-groups .ac-opened li[data-ticket='{other['id']}']", timeout=5000)
    panel_shot(board, ".oversight-board", "supervisor-oversight")

    # dismiss the explained case with a reason: it moves to 已撤销
    page.click(f"{item} button.ac-dismiss")
    page.fill(f"{item} form.ac-form textarea", "经核实系施工许可延期所致，非单位原因")
    page.click(f"{item} form.ac-form button[type=submit]")
    moved = f"#ac-groups .ac-dismissed li[data-case-id='{case['id']}']"
    page.wait_for_selector(moved)
    assert page.locator(item).count() == 0
    assert "经核实系施工许可延期所致" in page.inner_text(moved)
    assert "已撤销" in page.inner_text("#ac-groups .ac-dismissed h3")
    decided = api(live_server, city, "supervisor", "GET", "/api/accountability?state=dismissed")
    assert [(c["id"], c["decision_note"]) for c in decided] == [(case["id"], "经核实系施工许可延期所致，非单位原因")]
    # clicking an order opens its ticket
    page.click(f"{overdue_row} button.link")
    page.wait_for_selector("dialog#detail[open] .complaint")
    assert late["number"] in page.inner_text("dialog#detail .ticket-head")
    assert board.not_reloaded()
    board.close()


def test_a_burst_of_similar_requests_appears_as_a_hot_spot(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    board = Desk(browser, live_server, "supervisor")
    page = board.page
    page.wait_for_selector("#hs-list li.empty")
    board.mark()
    burst = [intake(live_server, city, text) for text in BURST]
    unrelated = intake(live_server, city, "咨询公积金提取需要带哪些材料")
    spot = f"#hs-list li.hs-spot[data-key='{burst[0]['id']}']"
    page.wait_for_selector(spot, timeout=8000)  # live: debounced refresh after the new tickets
    text = page.inner_text(spot)
    assert "澄江街道" in text and "4 件" in text
    assert page.inner_text("#kpi-hotspots") == "1"
    page.click(f"{spot} button.hs-toggle")
    assert shown_ids(board, f"{spot} .hs-drill tr[data-id]") == {t["id"] for t in burst}
    assert unrelated["number"] not in page.inner_text("#hotspots")
    panel_shot(board, "#hotspots", "supervisor-hotspots")
    page.click(f"{spot} .hs-drill tr[data-id='{burst[1]['id']}'] button.link")
    page.wait_for_selector("dialog#detail[open] .complaint")
    assert burst[1]["number"] in page.inner_text("dialog#detail .ticket-head")
    assert board.not_reloaded()
    board.close()


def test_the_open_ticket_keeps_what_the_supervisor_types_when_it_changes(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    ticket = intake(live_server, city, "澄江街道幸福小区地下车库积水严重")
    dispatch(live_server, city, ticket["id"], "cgj")
    near_due(live_server, ticket["id"], timedelta(seconds=-60))  # overdue: on the red list
    board = Desk(browser, live_server, "supervisor")
    page = board.page
    page.wait_for_selector(f"#red-list li[data-id='{ticket['id']}']")
    board_data = api(live_server, city, "supervisor", "GET", "/api/desk/board")
    assert page.inner_text("#kpi-red") == str(board_data["counts"]["overdue"]) == "1"
    page.click(f"#red-list li[data-id='{ticket['id']}'] button.item")
    page.wait_for_selector("dialog#detail[open] details.act-supervise")
    page.click("dialog#detail details.act-supervise summary")
    page.fill("dialog#detail form.act-supervise textarea[name=note]", "请今天下班前抽排积水并回复")
    act(live_server, city, "cgj", ticket["id"], "sign", note="已签收，安排抽水")
    page.wait_for_selector("dialog#detail .history li:has-text('已签收，安排抽水')")
    assert page.input_value("dialog#detail form.act-supervise textarea[name=note]") == "请今天下班前抽排积水并回复"
    assert page.locator("dialog#detail .stale-notice").count() == 1
    assert "已签收" in page.inner_text("dialog#detail .ticket-head")
    # the kept form submits with the new version
    with page.expect_response(lambda r: "/actions/supervise" in r.url) as response_info:
        page.click("dialog#detail form.act-supervise button[type=submit]")
    assert response_info.value.status == 200
    page.wait_for_selector("dialog#detail .history li:has-text('请今天下班前抽排积水并回复')")
    page.wait_for_selector(f"#sv-table tr[data-ticket='{ticket['id']}']")  # the board's 督办单 follows
    # nobody typing: the next event simply re-renders
    act(live_server, city, "cgj", ticket["id"], "comment", note="抽水泵已到场")
    page.wait_for_selector("dialog#detail .history li:has-text('抽水泵已到场')")
    assert page.locator("dialog#detail .stale-notice").count() == 0
    board.shot("supervisor-detail-kept", full=False)
    # the 超期 figure is the server's count, not the length of the (truncated) list
    page.click("#detail-close")
    page.evaluate("window.__desk.state.board.counts.overdue = 612")
    page.wait_for_selector("#kpi-red:text-is('612')")  # (wait_for_function would need eval, which the CSP forbids)
    assert "另有 611 件超期工单未列出" in page.inner_text("#red-list")
    board.close()
