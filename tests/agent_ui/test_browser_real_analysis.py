"""The agent desk with the real text analysis behind it: the starter model trained from the seed corpus, the
city's gazetteer and dispatch catalogue, the knowledge index. No stand-in: what the agent sees pre-filled is what
the product computes for that sentence."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.agent_ui.conftest import LiveServer
from tests.agent_ui.test_browser import Desk, db_url  # noqa: F401  (db_url: the SQLite file the server shares)
from tests.conftest import City

pytestmark = pytest.mark.browser


def test_the_desk_shows_what_the_real_analysis_computes(browser: Any, real_server: LiveServer, city: City) -> None:
    agent = Desk(browser, real_server, "agent")
    page = agent.page
    page.keyboard.press("n")  # N opens the intake form
    text = "澄江街道建设路早市摊贩占道经营，人行道完全被堵住了，城管来了又回来，希望彻底整治"
    page.fill("#in-text", text)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#ticket .analysis .kb strong")  # the knowledge article's title arrives last
    analysis = page.inner_text("#ticket .analysis")
    expected = real_server.services.suggester.suggest  # the same analysis, computed directly
    with real_server.services.sessions() as session:
        direct = expected(session, "", text, None, _now())
    label = direct.categories[0].label
    # The starter knows a street-vendor complaint (城市管理/市容秩序); this small city's tree has only 城市管理 of it.
    assert label == "城市管理"
    for part in (label, "澄江街道", "明湖市城市管理局", "派单目录规则", "占道经营的投诉处理流程"):
        assert part in analysis, part
    shown = re.search(label + r"\n(\d+\.\d)%", analysis)
    assert shown is not None and abs(float(shown.group(1)) - direct.categories[0].probability * 100) <= 0.1
    page.click("#ticket details.act-dispatch summary")
    form = page.locator("#ticket form.act-dispatch")
    assert form.locator("select[name=unit_id]").input_value() == str(city.ids["unit:cgj"])
    agent.shot("agent-desk-real-analysis")
    agent.close()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
