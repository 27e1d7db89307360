"""The citizen's page in a real browser on a phone-sized screen: a request is filed (answering the challenge), the
receipt shows the ticket number once the worker made the ticket, and the request is followed by number + the
phone's last four digits; a wrong last four shows the same refusal as an unknown number."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from sqlalchemy import select

from hotline import inbound
from hotline.models import Ticket
from tests.agent_ui.conftest import SCREENSHOTS, LiveServer
from tests.agent_ui.test_browser import api, db_url
from tests.conftest import City

pytestmark = pytest.mark.browser
__all__ = ["db_url"]


def answer(question: str) -> str:
    a, b = (int(n) for n in re.findall(r"\d+", question))
    return str(a + b)


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_citizen_files_a_request_on_a_phone_and_follows_it(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server.url + "/public")
    page.wait_for_selector("#req-question:has-text('等于几')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
    page.fill("#req-text", "澄江街道建设路早市摊贩占道经营，人行道无法通行，希望尽快处理")
    page.fill("#req-location", "澄江街道建设路")
    page.fill("#req-name", "李女士")
    page.fill("#req-phone", "13800005678")
    page.fill("#req-answer", str(int(answer(page.inner_text("#req-question"))) + 1))  # a wrong answer first
    page.click("#req-form button[type=submit]")
    page.wait_for_selector("#req-error:has-text('验证题')")
    page.fill("#req-answer", answer(page.inner_text("#req-question")))
    page.click("#req-form button[type=submit]")
    page.wait_for_selector("#receipt .pending")
    shot(page, "public-receipt-waiting")

    services = live_server.services
    deadline = time.monotonic() + 10
    while not inbound.process_pending(services.sessions, services.suggester, services.timing).created:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    page.wait_for_selector("#receipt-number", timeout=15_000)
    number = page.inner_text("#receipt-number")
    with services.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert ticket.channel == "web" and ticket.location == "澄江街道建设路"
    shot(page, "public-receipt-number")
    api(live_server, city, "dispatcher", "POST", f"/api/tickets/{ticket.id}/actions/dispatch",
        unit_id=city.ids["unit:cjjd"])

    page.click("#receipt button:has-text('查询进度')")
    assert page.input_value("#f-number") == number
    page.fill("#f-last4", "1234")
    page.click("#follow-form button[type=submit]")
    page.wait_for_selector("#follow-error:has-text('未找到该工单')")
    wrong = page.inner_text("#follow-error")
    page.fill("#f-number", "20990101-9999")
    page.fill("#f-last4", "5678")
    page.click("#follow-form button[type=submit]")
    page.wait_for_selector("#follow-error:has-text('未找到该工单')")
    assert page.inner_text("#follow-error") == wrong and page.is_hidden("#follow-result")

    page.fill("#f-number", number)
    page.click("#follow-form button[type=submit]")
    page.wait_for_selector("#follow-status")
    assert page.inner_text("#follow-status") == "已转交承办单位"
    assert page.inner_text("#follow-unit") == "澄江街道办事处"
    result = page.inner_text("#follow-result")
    assert "办结时限" in result and "李女士" not in result and "13800005678" not in result
    shot(page, "public-follow")
    assert not errors, errors
    context.close()
