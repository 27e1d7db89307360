"""The admin desk in a real browser: an admin lands on it, opens a unit's handler account in a few clicks, changes
a catalogue rule and sees the tester and the next intake (the product's own analysis) route by it, is refused an
Excel file with an error row and shown the row, previews and applies a clean file, and moves a deadline with a
holiday override. Each change is
an audit event on the desk."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import Workbook
from playwright.sync_api import expect
from sqlalchemy import select

from hotline.models import AuditEvent, InboundMessage, Status, Ticket, User
from hotline.worker import process_inbound_once
from tests.agent_ui.conftest import LiveServer
from tests.agent_ui.test_browser import Desk, api, db_url, intake
from tests.conftest import City

pytestmark = pytest.mark.browser
__all__ = ["db_url"]


def admin_desk(browser: Any, server: LiveServer, tab: str) -> Desk:
    desk = Desk(browser, server, "admin")
    desk.page.on("dialog", lambda dialog: dialog.accept())
    assert desk.page.url.endswith("/desk/admin#users")
    if tab != "users":
        desk.page.click(f".admin-tabs [data-tab={tab}]")
    desk.page.wait_for_selector(f"body[data-loaded={tab}]")
    return desk


def test_an_admin_opens_a_handler_account_for_a_unit_and_it_logs_in(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    desk = admin_desk(browser, live_server, "users")
    page = desk.page
    assert page.locator("#u-table tr[data-username=admin] td").nth(5).inner_text() != "从未登录"
    assert page.locator("#u-table tr[data-username=agent2] td").nth(5).inner_text() == "从未登录"
    page.select_option("#uh-unit", str(city.ids["unit:zjj"]))
    page.click("#u-handler button[type=submit]")
    page.wait_for_selector("#u-secret-password")
    password = page.inner_text("#u-secret-password")
    page.wait_for_selector("#u-table tr[data-username=mh-zjj]")
    cells = page.locator("#u-table tr[data-username=mh-zjj] td").all_inner_texts()
    assert cells[1:5] == ["市住建局经办人", "承办单位", "市住建局", "正常"]
    desk.shot("admin-users")
    login = httpx.post(live_server.url + "/api/auth/login", json={"username": "mh-zjj", "password": password})
    assert login.status_code == 200
    me = httpx.get(live_server.url + "/api/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["unit_id"] == city.ids["unit:zjj"]

    # disable it again: the account's token stops working at once
    page.click("#u-table tr[data-username=mh-zjj] [data-role=toggle]")
    page.wait_for_selector("#u-table tr[data-username=mh-zjj]", state="detached")
    me = httpx.get(live_server.url + "/api/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.status_code == 401

    page.click(".admin-tabs [data-tab=audit]")
    page.wait_for_selector("#a-table tr[data-entity=user]")
    audit = page.inner_text("#a-table")
    assert "为明湖市住房和城乡建设局新建承办账号 mh-zjj" in audit and "停用账号" in audit
    assert "active: true → false" in audit
    desk.close()


VENDORS = "澄江街道建设路早市摊贩占道经营，人行道完全被堵住了，希望彻底整治"


def test_a_changed_catalogue_rule_routes_the_tester_and_the_next_intake(
    browser: Any, real_server: LiveServer, city: City
) -> None:
    """城市管理 × 明湖市 goes to the city's urban-management bureau; the admin hands it to the street office, the
    tester says so at once, and the next call recorded at the agent's desk is routed there and dispatched."""
    desk = admin_desk(browser, real_server, "directory")
    page = desk.page
    page.select_option("#t-category", str(city.ids["cat:chengguan"]))
    page.select_option("#t-area", str(city.ids["area:cj"]))
    page.click("#t-route button[type=submit]")
    expect(page.locator("#t-result [data-role=unit]")).to_have_text("明湖市城市管理局")
    page.fill("#t-text", VENDORS)
    page.click("#t-suggest button[type=submit]")
    expect(page.locator("#t-result [data-role=unit]")).to_have_text("明湖市城市管理局")

    rule = next(r for r in api(real_server, city, "admin", "GET", "/api/catalogue")["rules"]
                if r["category_id"] == city.ids["cat:chengguan"])
    page.fill("#r-q", "城市管理")
    page.click(f"#r-table tr[data-id='{rule['id']}'] [data-role=edit]")
    page.select_option("#re-lead", str(city.ids["unit:cjjd"]))
    page.fill("#re-note", "市容类诉求先由街道核实")
    page.click("#r-edit-form button[value=save]")
    expect(page.locator(f"#r-table tr[data-id='{rule['id']}'] [data-role=lead]")).to_have_text("澄江街道办事处")

    page.click("#t-route button[type=submit]")
    expect(page.locator("#t-result [data-role=unit]")).to_have_text("澄江街道办事处")
    assert f"#{rule['id']}" in page.inner_text("#t-result [data-role=rule]")
    page.click("#t-suggest button[type=submit]")
    expect(page.locator("#t-result [data-role=unit]")).to_have_text("澄江街道办事处")
    desk.shot("admin-catalogue-tester")
    desk.close()

    # the next intake, recorded at the agent's desk, is routed by the changed rule
    agent = Desk(browser, real_server, "agent")
    agent.page.keyboard.press("n")
    agent.page.fill("#in-text", VENDORS)
    agent.page.keyboard.press("Control+Enter")
    agent.page.wait_for_selector("#ticket .analysis .route .unit")
    assert agent.page.inner_text("#ticket .analysis .route .unit").startswith("澄江街道办事处")
    assert "市容类诉求先由街道核实" in agent.page.inner_text("#ticket .analysis .route")
    agent.page.click("#ticket details.act-dispatch summary")
    form = agent.page.locator("#ticket form.act-dispatch")
    assert form.locator("select[name=unit_id]").input_value() == str(city.ids["unit:cjjd"])
    number = agent.page.inner_text("#ticket .ticket-head .number")
    with agent.page.expect_response(lambda r: "/actions/dispatch" in r.url) as response_info:
        form.locator("button[type=submit]").click()
    assert response_info.value.status == 200
    agent.close()
    with real_server.services.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert (ticket.status, ticket.lead_unit_id) == (Status.dispatched, city.ids["unit:cjjd"])


def workbook(rows: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "单位"
    sheet.append(["编码", "名称", "类型", "服务区域编码"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_an_excel_with_an_error_row_is_refused_with_its_row_number_and_a_clean_one_previewed_then_applied(
    browser: Any, live_server: LiveServer, city: City, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(workbook([["mh-sw", "明湖市水务局", "bureau", "mh"],
                              ["mh-jt", "明湖市交通局", "bureau", "nowhere"]]))
    good = tmp_path / "good.xlsx"
    good.write_bytes(workbook([["mh-sw", "明湖市水务局", "bureau", "mh"],
                               ["mh-cgj", "明湖市城市管理综合执法局", "bureau", "mh"]]))
    desk = admin_desk(browser, live_server, "directory")
    page = desk.page
    page.set_input_files("#imp-file", str(bad))
    page.click("#imp-preview")
    page.wait_for_selector("#imp-result .import-errors tr[data-row='3']")
    assert "第3行" in page.inner_text("#imp-result") and "服务区域编码“nowhere”不存在" in page.inner_text("#imp-result")
    assert page.is_disabled("#imp-apply")
    desk.shot("admin-import-error")

    page.set_input_files("#imp-file", str(good))
    page.click("#imp-preview")
    page.wait_for_selector("#imp-result .import-preview[data-applied=no]")
    assert page.inner_text("#imp-result tr[data-key=mh-sw] td:first-child") == "新增"
    changed = page.inner_text("#imp-result tr[data-key=mh-cgj]")
    assert "修改" in changed and "第3行" in changed and "明湖市城市管理局 → 明湖市城市管理综合执法局" in changed
    assert all(u["code"] != "mh-sw" for u in api(live_server, city, "admin", "GET", "/api/units"))  # nothing written
    page.click("#imp-apply")
    page.wait_for_selector("#imp-result .import-preview[data-applied=yes]")
    page.wait_for_selector("#d-units tr[data-code=mh-sw]")
    assert any(u["code"] == "mh-sw" for u in api(live_server, city, "admin", "GET", "/api/units"))
    desk.shot("admin-import-applied")
    desk.close()


def test_a_holiday_override_moves_the_deadline_in_the_preview(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    zone = ZoneInfo(live_server.services.settings.city_timezone)
    desk = admin_desk(browser, live_server, "calendar")
    page = desk.page
    page.wait_for_selector("#pv-result [data-role=reply-due]")
    shown = page.get_attribute("#pv-result [data-role=reply-due]", "data-value") or ""
    before = datetime.fromisoformat(shown)
    # a working day between now and the reply deadline becomes a local holiday
    day = datetime.now(zone).date() + timedelta(days=1)
    calendar = live_server.services.timing.calendar
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    assert day < before.astimezone(zone).date()
    page.fill("#co-day", day.isoformat())
    page.select_option("#co-working", "false")
    page.fill("#co-note", "本市防汛放假")
    page.click("#c-override button[type=submit]")
    page.wait_for_selector(f"#c-grid [data-day='{day.isoformat()}'][data-working=false].ov")
    expect(page.locator("#pv-result [data-role=reply-due]")).not_to_have_attribute("data-value", shown)
    after = datetime.fromisoformat(page.get_attribute("#pv-result [data-role=reply-due]", "data-value") or "")
    assert after > before  # one working day later (or more, when the new day off makes a weekend longer)
    assert calendar_text(page, day) == "本市防汛放假"
    desk.shot("admin-calendar")
    with live_server.services.sessions() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.entity == "calendar_override")).one()
        assert event.after == {"day": day.isoformat(), "working": False, "note": "本市防汛放假"}
        assert event.actor_id == city.ids["user:admin"]
    desk.close()


def calendar_text(page: Any, day: date) -> str:
    text: str = page.inner_text(f"#c-overrides li[data-day='{day.isoformat()}']")
    return text.split(" ", 2)[2].removesuffix("删除").strip()


def test_a_unit_handler_cannot_open_the_admin_desk(browser: Any, live_server: LiveServer, city: City) -> None:
    desk = Desk(browser, live_server, "cjjd")
    desk.page.goto(live_server.url + "/desk/admin")
    desk.page.wait_for_selector("main.denied")
    assert "无权访问此页面" in desk.page.inner_text("main.denied")
    assert desk.errors == []  # the page's script stops after drawing the notice, without an uncaught error
    desk.context.close()
    with live_server.services.sessions() as s:
        assert s.scalars(select(User).where(User.username == "cjjd")).one().last_active_at is not None


def test_an_article_given_dates_and_an_owner_is_previewed_then_expired_and_the_agent_may_not_quote_it(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """The live server's analysis offers its one article on every ticket: once the admin lets it expire, the
    agent's panel marks it 已过期 and offers no 引用答复; the admin's list marks it too."""
    zone = ZoneInfo(live_server.services.settings.city_timezone)
    today = datetime.now(zone).date()
    ticket = intake(live_server, city, "澄江街道建设路早市摊贩占道经营，人行道无法通行")
    (article,) = api(live_server, city, "admin", "GET", "/api/knowledge")
    desk = admin_desk(browser, live_server, "knowledge")
    page = desk.page
    page.click(f"#k-list li[data-id='{article['id']}'] button.item")
    page.select_option("#k-owner", str(city.ids["unit:cjjd"]))
    page.fill("#k-from", (today + timedelta(days=10)).isoformat())
    page.fill("#k-to", (today + timedelta(days=5)).isoformat())
    page.click("#k-form button[type=submit]")
    expect(page.locator("#toast")).to_contain_text("有效期的结束日期")  # refused in Chinese, nothing saved
    assert api(live_server, city, "admin", "GET", f"/api/knowledge/{article['id']}")["valid_to"] is None

    page.fill("#k-from", (today - timedelta(days=30)).isoformat())
    page.fill("#k-to", (today - timedelta(days=1)).isoformat())
    preview = page.inner_text("#k-preview")
    assert "维护单位：澄江街道办事处" in preview and "已过期" in preview and "引用答复" not in preview
    page.click("#k-form button[type=submit]")
    page.wait_for_selector(f"#k-list li[data-id='{article['id']}'][data-validity=expired]")
    assert "已过期" in page.inner_text(f"#k-list li[data-id='{article['id']}']")
    desk.shot("admin-knowledge-expired")
    desk.close()

    agent = Desk(browser, live_server, "agent")
    agent.page.click(f"#queue-list li[data-id='{ticket['id']}'] button.item")
    entry = agent.page.locator("#ticket .analysis .kb li")
    expect(entry).to_contain_text("已过期")
    text = entry.inner_text()
    assert "占道经营的投诉处理流程" in text and "维护单位：澄江街道办事处" in text
    assert f"有效期 {(today - timedelta(days=30)).isoformat()} 至 {(today - timedelta(days=1)).isoformat()}" in text
    assert entry.locator("button:has-text('引用答复')").count() == 0
    agent.close()


def test_changed_office_hours_move_the_deadline_preview_and_holidays_are_named(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    desk = admin_desk(browser, live_server, "calendar")
    page = desk.page
    page.fill("#pv-start", "2026-12-07T09:00")  # a Monday
    page.click("#pv-form button[type=submit]")
    expect(page.locator("#pv-result [data-role=sign-due]")).to_contain_text("11:00")
    assert page.inner_text("#oh-source") == "（系统默认设置）"

    starts = page.locator("#oh-periods [name=opens]")
    starts.nth(0).fill("10:00")
    page.click("#oh-form button[type=submit]")
    expect(page.locator("#pv-result [data-role=sign-due]")).to_contain_text("12:00")  # two hours from 10:00
    assert page.inner_text("#c-hours") == "10:00–12:00、13:30–17:30"
    assert "本市设置" in page.inner_text("#oh-source")
    assert live_server.services.timing.calendar.office_hours[0][0].isoformat(timespec="minutes") == "10:00"

    # overlapping periods: refused in Chinese, the hours stay
    page.click("#oh-add")
    page.locator("#oh-periods [name=opens]").nth(2).fill("17:00")
    page.locator("#oh-periods [name=closes]").nth(2).fill("19:00")
    page.click("#oh-form button[type=submit]")
    expect(page.locator("#toast")).to_contain_text("时段 13:30–17:30 与 17:00–19:00 重叠")
    assert api(live_server, city, "admin", "GET", "/api/calendar/office-hours")["periods"] == [
        ["10:00", "12:00"], ["13:30", "17:30"]]

    # October 2026: the National Day days off and the weekend worked for them carry the holiday's name
    now = datetime.now(ZoneInfo(live_server.services.settings.city_timezone))
    steps = (now.year - 2026) * 12 + now.month - 10
    for _ in range(abs(steps)):
        page.click("#c-prev" if steps > 0 else "#c-next")
    expect(page.locator("#c-month")).to_have_text("2026年10月")
    assert page.inner_text("#c-grid [data-day='2026-10-01'] [data-role=holiday]") == "国庆节"
    assert page.inner_text("#c-grid [data-day='2026-10-10'] [data-role=holiday]") == "国庆节调休"
    desk.shot("admin-office-hours")
    with live_server.services.sessions() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.entity == "office_hours")).one()
        assert event.after is not None and event.after["periods"] == [["10:00", "12:00"], ["13:30", "17:30"]]
    desk.close()


def test_the_wechat_test_button_sends_a_typed_message_that_becomes_a_ticket_on_an_open_agent_desk(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    """#12's simulator page and #11's admin button: the admin types what a citizen writes to the official account,
    presses 测试, the server pushes it to itself signed (and encrypted) as WeChat does, the worker makes the ticket,
    and the agent's desk — open all along — shows it; the card names the ticket number."""
    agent = Desk(browser, live_server, "agent")
    agent.mark()
    desk = admin_desk(browser, live_server, "channels")
    page = desk.page
    card = page.locator(".ch-card[data-channel=wechat]")
    assert card.locator("[data-role=address]").inner_text() == live_server.url + "/channels/wechat"
    assert card.locator("[data-setting=HOTLINE_WECHAT_TOKEN]").inner_text() == "演示值"
    assert "DemoWeChatToken2024" not in page.inner_text("#ch-cards")
    text = "澄江街道建设路菜场门口有人占道经营，三轮车堵住了路口"
    card.locator("textarea[name=text]").fill(text)
    card.locator("button[type=submit]").click()
    expect(card.locator("[data-role=outcome]")).to_have_text("渠道已接收（HTTP 200）")
    assert "已收到" in card.locator("[data-role=reply]").inner_text()

    # the worker's pass (embedded in the server in production on SQLite; here the test runs the same function)
    services = live_server.services
    assert process_inbound_once(services).created == 1
    with services.sessions() as s:
        stored = s.scalars(select(InboundMessage).where(InboundMessage.channel == "wechat")).one()
        ticket = s.scalars(select(Ticket).where(Ticket.id == stored.ticket_id)).one()
    expect(card.locator("[data-role=ticket-number]")).to_have_text(ticket.number)
    agent.page.wait_for_selector(f"#queue-list li[data-id='{ticket.id}']")
    assert text[:10] in agent.page.inner_text(f"#queue-list li[data-id='{ticket.id}']")
    assert agent.not_reloaded()
    desk.shot("admin-channels-wechat-test")
    page.click(".admin-tabs [data-tab=audit]")
    page.wait_for_selector("#a-table tr[data-entity=channel]")
    assert "测试微信公众号：已接收" in page.inner_text("#a-table")
    desk.close()
    agent.close()
